// IP_TRANSPARENT / IPV6_TRANSPARENT for C libraries whose headers lack them (the values are Linux's,
// include/uapi/linux/in.h and in6.h), and the setup sockopt.c and relay.c both give a transparent socket.
#ifndef SIDECAR_TRANSPARENT_H
#define SIDECAR_TRANSPARENT_H
#include <netinet/in.h>
#include <stdbool.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

// Before bind: IP_TRANSPARENT / IPV6_TRANSPARENT when transparent (so fd may bind an address that is not
// local), then SO_MARK when mark is not 0. Returns NULL, or the call the kernel refused (errno says why).
// Plain C, defined in napi-util.c.
const char* transparent_setup(int fd, int family, bool transparent, int mark);

#endif
