// IP_TRANSPARENT / IPV6_TRANSPARENT for C libraries whose headers lack them (the values are Linux's,
// include/uapi/linux/in.h and in6.h); sockopt.c and relay.c both make transparent sockets.
#ifndef SIDECAR_TRANSPARENT_H
#define SIDECAR_TRANSPARENT_H
#include <netinet/in.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

#endif
