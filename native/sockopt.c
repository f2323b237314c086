// Socket options the sidecar needs that node:net does not expose. Only integers and short strings cross
// the boundary; every failure throws an Error whose code is the errno name (ENOENT, EPERM, ...).
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

#define NAPI_CALL(env, call)                                              \
  do {                                                                    \
    if ((call) != napi_ok) {                                              \
      const napi_extended_error_info* info = NULL;                        \
      napi_get_last_error_info((env), &info);                             \
      bool pending = false;                                               \
      napi_is_exception_pending((env), &pending);                         \
      if (!pending) {                                                     \
        napi_throw_error((env), "SIDECAR_ERR_NAPI",                       \
                         info && info->error_message ? info->error_message \
                                                     : "Node-API call failed"); \
      }                                                                   \
      return NULL;                                                        \
    }                                                                     \
  } while (0)

static const char* errno_name(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EINVAL: return "EINVAL";
    case ENOTCONN: return "ENOTCONN";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char* syscall, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value code, msg, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok) {
    napi_throw_error(env, errno_name(err), message);
    return NULL;
  }
  napi_create_int32(env, -err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

// Reads argc int32 arguments into out; throws a TypeError naming the first bad one.
static bool int_args(napi_env env, napi_callback_info info, size_t want, int32_t* out) {
  size_t argc = want;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_COUNT", "wrong number of arguments");
    return false;
  }
  for (size_t i = 0; i < want; i++) {
    napi_valuetype type;
    if (napi_typeof(env, argv[i], &type) != napi_ok || type != napi_number) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "arguments must be integers");
      return false;
    }
    napi_get_value_int32(env, argv[i], &out[i]);
  }
  return true;
}

static napi_value address_object(napi_env env, const struct sockaddr_storage* ss) {
  char text[INET6_ADDRSTRLEN];
  int port, family;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* sin = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    port = ntohs(sin->sin_port);
    family = 4;
  } else {
    const struct sockaddr_in6* sin6 = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    port = ntohs(sin6->sin6_port);
    family = 6;
  }
  napi_value result, address, port_value, family_value;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address));
  NAPI_CALL(env, napi_create_int32(env, port, &port_value));
  NAPI_CALL(env, napi_create_int32(env, family, &family_value));
  NAPI_CALL(env, napi_set_named_property(env, result, "address", address));
  NAPI_CALL(env, napi_set_named_property(env, result, "port", port_value));
  NAPI_CALL(env, napi_set_named_property(env, result, "family", family_value));
  return result;
}

// originalDst(fd, family): the destination the client asked for before NAT rewrote it.
// family is 4 or 6; an IPv4-mapped IPv6 client passes 4, since conntrack holds an IPv4 tuple.
static napi_value original_dst(napi_env env, napi_callback_info info) {
  int32_t args[2];
  if (!int_args(env, info, 2, args)) return NULL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len = sizeof ss;
  int rc = args[1] == 6
               ? getsockopt(args[0], SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
               : getsockopt(args[0], SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (rc != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
    return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", EAFNOSUPPORT);
  }
  return address_object(env, &ss);
}

static napi_value set_int_option(napi_env env, napi_callback_info info, int level, int name,
                                 const char* syscall) {
  int32_t args[2];
  if (!int_args(env, info, 2, args)) return NULL;
  int value = args[1];
  if (setsockopt(args[0], level, name, &value, sizeof value) != 0) {
    return throw_errno(env, syscall, errno);
  }
  return NULL;
}

// setTransparent(fd, family, on): IP_TRANSPARENT or IPV6_TRANSPARENT (needs CAP_NET_ADMIN).
static napi_value set_transparent(napi_env env, napi_callback_info info) {
  int32_t args[3];
  if (!int_args(env, info, 3, args)) return NULL;
  int value = args[2] ? 1 : 0;
  int rc = args[1] == 6 ? setsockopt(args[0], SOL_IPV6, IPV6_TRANSPARENT, &value, sizeof value)
                        : setsockopt(args[0], SOL_IP, IP_TRANSPARENT, &value, sizeof value);
  if (rc != 0) return throw_errno(env, "setsockopt(IP_TRANSPARENT)", errno);
  return NULL;
}

static napi_value set_mark(napi_env env, napi_callback_info info) {
  return set_int_option(env, info, SOL_SOCKET, SO_MARK, "setsockopt(SO_MARK)");
}

static napi_value get_int_option(napi_env env, napi_callback_info info, int level, int name,
                                 const char* syscall) {
  int32_t args[1];
  if (!int_args(env, info, 1, args)) return NULL;
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(args[0], level, name, &value, &len) != 0) return throw_errno(env, syscall, errno);
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, value, &result));
  return result;
}

static napi_value get_mark(napi_env env, napi_callback_info info) {
  return get_int_option(env, info, SOL_SOCKET, SO_MARK, "getsockopt(SO_MARK)");
}

// pendingError(fd): the socket's pending error (SO_ERROR), cleared by reading it; 0 when there is none. libuv
// takes a hang-up after a short read for end of file without reading again, so an RST that arrived behind the
// last bytes is still pending here when node:net says 'end'.
static napi_value pending_error(napi_env env, napi_callback_info info) {
  return get_int_option(env, info, SOL_SOCKET, SO_ERROR, "getsockopt(SO_ERROR)");
}

// setLinger0(fd): close with RST, for closing a connection visibly when its stream was cut short.
static napi_value set_linger0(napi_env env, napi_callback_info info) {
  int32_t args[1];
  if (!int_args(env, info, 1, args)) return NULL;
  struct linger lg = {1, 0};
  if (setsockopt(args[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0) {
    return throw_errno(env, "setsockopt(SO_LINGER)", errno);
  }
  return NULL;
}

// Local and peer address of a socket: used by tests and by the loop guard on raw fds.
static napi_value sock_name(napi_env env, napi_callback_info info, bool peer) {
  int32_t args[1];
  if (!int_args(env, info, 1, args)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int rc = peer ? getpeername(args[0], (struct sockaddr*)&ss, &len)
                : getsockname(args[0], (struct sockaddr*)&ss, &len);
  if (rc != 0) return throw_errno(env, peer ? "getpeername" : "getsockname", errno);
  return address_object(env, &ss);
}

static napi_value local_address(napi_env env, napi_callback_info info) {
  return sock_name(env, info, false);
}

static napi_value peer_address(napi_env env, napi_callback_info info) {
  return sock_name(env, info, true);
}

// transparentSocket(address, port, mark): a non-blocking TCP socket with IP_TRANSPARENT (IPV6_TRANSPARENT
// for an IPv6 address) set BEFORE bind, so it may bind an address that is not local (the client's, for
// TPROXY's upstream) and, as a listener, receive the connections the TPROXY target diverts to it. '::' is
// bound dual-stack. A port means a listener (SO_REUSEADDR); mark, when not 0, is set with SO_MARK. Returns
// the bound fd, for node:net to listen on (server.listen({ fd })) or to connect (new Socket({ fd })).
// Needs CAP_NET_ADMIN or CAP_NET_RAW: without, throws EPERM naming the option the kernel refused.
static napi_value transparent_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_COUNT", "transparentSocket(address, port, mark)");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN + 1];
  size_t text_len = 0;
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "address must be a string");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], text, sizeof text, &text_len));
  // A longer string was cut to fit: refuse it rather than parse its first characters as an address.
  if (text_len >= sizeof text - 1) return throw_errno(env, "inet_pton", EINVAL);
  int32_t nums[2];
  for (int i = 0; i < 2; i++) {
    NAPI_CALL(env, napi_typeof(env, argv[i + 1], &type));
    if (type != napi_number) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "port and mark must be integers");
      return NULL;
    }
    NAPI_CALL(env, napi_get_value_int32(env, argv[i + 1], &nums[i]));
  }
  if (nums[0] < 0 || nums[0] > 65535) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "port must be 0 to 65535");
    return NULL;
  }

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family;
  bool any6 = false;
  struct sockaddr_in* sin = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* sin6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
    family = AF_INET;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)nums[0]);
    len = sizeof *sin;
  } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
    family = AF_INET6;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)nums[0]);
    any6 = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
    len = sizeof *sin6;
  } else {
    return throw_errno(env, "inet_pton", EINVAL);
  }

  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int on = 1, off = 0, mark = nums[1];
  const char* failed = NULL;
  if (family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on)
                         : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on)) {
    failed = family == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
  } else if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark)) {
    failed = "setsockopt(SO_MARK)";
  } else if (any6 && setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &off, sizeof off)) {
    failed = "setsockopt(IPV6_V6ONLY)";
  } else if (nums[0] != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)) {
    failed = "setsockopt(SO_REUSEADDR)";
  } else if (bind(fd, (struct sockaddr*)&ss, len)) {
    failed = "bind";
  }
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    napi_throw_error(env, "SIDECAR_ERR_NAPI", "napi_create_int32 failed");
    return NULL;
  }
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_default, NULL},
      {"setTransparent", NULL, set_transparent, NULL, NULL, NULL, napi_default, NULL},
      {"setMark", NULL, set_mark, NULL, NULL, NULL, napi_default, NULL},
      {"getMark", NULL, get_mark, NULL, NULL, NULL, napi_default, NULL},
      {"pendingError", NULL, pending_error, NULL, NULL, NULL, napi_default, NULL},
      {"setLinger0", NULL, set_linger0, NULL, NULL, NULL, napi_default, NULL},
      {"localAddress", NULL, local_address, NULL, NULL, NULL, napi_default, NULL},
      {"peerAddress", NULL, peer_address, NULL, NULL, NULL, napi_default, NULL},
      {"transparentSocket", NULL, transparent_socket, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
