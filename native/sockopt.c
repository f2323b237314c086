// Socket options the sidecar needs that node:net does not expose. Only integers and short strings cross
// the boundary; a failed syscall throws an Error shaped like node's own system errors (code: libuv's errno
// name, errno: negative, syscall), a bad argument a TypeError or RangeError naming it.
#include "napi-util.h"
#include "transparent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Reads the int32 arguments named in names (want of them, at most 4); throws a TypeError naming a bad one.
static bool int_args(napi_env env, napi_callback_info info, size_t want, const char* const* names,
                     int32_t* out) {
  size_t argc = want;
  napi_value argv[4];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), false);
  if (argc < want) {
    throw_type(env, "ERR_INVALID_ARG_COUNT", "wrong number of arguments");
    return false;
  }
  for (size_t i = 0; i < want; i++) {
    if (!int_arg(env, argv[i], names[i], &out[i])) return false;
  }
  return true;
}

// originalDst(fd, family): the destination the client asked for before NAT rewrote it, or undefined when the
// connection was not redirected (ENOENT: conntrack has no entry for it). That is the common case for a
// listener that also takes direct connections, so it is a value, not an exception to catch on each accept.
// family is 4 or 6; an IPv4-mapped IPv6 client passes 4, since conntrack holds an IPv4 tuple.
static napi_value original_dst(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"fd", "family"};
  int32_t args[2];
  if (!int_args(env, info, 2, names, args)) return NULL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len = sizeof ss;
  int rc = args[1] == 6
               ? getsockopt(args[0], SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
               : getsockopt(args[0], SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (rc != 0 && errno == ENOENT) {
    napi_value undefined;
    NAPI_CALL(env, napi_get_undefined(env, &undefined));
    return undefined;
  }
  if (rc != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", errno);
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
    return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)", EAFNOSUPPORT);
  }
  return address_object(env, &ss);
}

// setMark(fd, mark): SO_MARK (needs CAP_NET_ADMIN). The sidecar sets its mark inside transparentSocket;
// this and getMark let the tests check the option on a real socket.
static napi_value set_mark(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"fd", "mark"};
  int32_t args[2];
  if (!int_args(env, info, 2, names, args)) return NULL;
  int value = args[1];
  if (setsockopt(args[0], SOL_SOCKET, SO_MARK, &value, sizeof value) != 0) {
    return throw_errno(env, "setsockopt(SO_MARK)", errno);
  }
  return NULL;
}

static napi_value get_int_option(napi_env env, napi_callback_info info, int level, int name,
                                 const char* syscall) {
  static const char* const names[] = {"fd"};
  int32_t args[1];
  if (!int_args(env, info, 1, names, args)) return NULL;
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

// tcpInfo(fd): { state, lastAckRecvMs } from TCP_INFO: the kernel's TCP state (1 ESTABLISHED, 2 SYN_SENT, ...)
// and the milliseconds since the socket last received an ACK. The loop guard asks it of both ends of a suspected
// loop: a socket that is still in SYN_SENT cannot be the other end of a connection whose handshake already
// completed, and the two ends of one connection took their handshake ACKs in the same moment.
static napi_value tcp_info(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"fd"};
  int32_t args[1];
  if (!int_args(env, info, 1, names, args)) return NULL;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(args[0], IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return throw_errno(env, "getsockopt(TCP_INFO)", errno);
  napi_value result, state, last_ack;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_uint32(env, ti.tcpi_state, &state));
  NAPI_CALL(env, napi_create_uint32(env, ti.tcpi_last_ack_recv, &last_ack));
  NAPI_CALL(env, napi_set_named_property(env, result, "state", state));
  NAPI_CALL(env, napi_set_named_property(env, result, "lastAckRecvMs", last_ack));
  return result;
}

// localAddress(fd): getsockname as { address, port, family }; the tests compare it with node:net's view.
static napi_value local_address(napi_env env, napi_callback_info info) {
  static const char* const names[] = {"fd"};
  int32_t args[1];
  if (!int_args(env, info, 1, names, args)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(args[0], (struct sockaddr*)&ss, &len) != 0) {
    return throw_errno(env, "getsockname", errno);
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
    return throw_errno(env, "getsockname", EAFNOSUPPORT);
  }
  return address_object(env, &ss);
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
  if (argc < 3) return throw_type(env, "ERR_INVALID_ARG_COUNT", "transparentSocket(address, port, mark)");
  char text[ADDRESS_TEXT_MAX];
  if (!address_text(env, argv[0], "address", text)) return NULL;
  int32_t nums[2];
  if (!int_arg(env, argv[1], "port", &nums[0]) || !int_arg(env, argv[2], "mark", &nums[1])) return NULL;
  if (nums[0] < 0 || nums[0] > 65535) {
    NAPI_CALL(env, napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "port must be 0 to 65535"));
    return NULL;
  }

  struct sockaddr_storage ss;
  socklen_t len;
  if (!sockaddr_parse(env, text, (uint16_t)nums[0], &ss, &len)) return NULL;
  int family = ss.ss_family;
  bool any6 = family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6*)&ss)->sin6_addr);

  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int on = 1, off = 0;
  const char* failed = transparent_setup(fd, family, true, nums[1]);
  if (!failed && any6 && setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &off, sizeof off)) failed = "setsockopt(IPV6_V6ONLY)";
  if (!failed && nums[0] != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)) failed = "setsockopt(SO_REUSEADDR)";
  if (!failed && bind(fd, (struct sockaddr*)&ss, len)) failed = "bind";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  napi_value result;
  napi_status status = napi_create_int32(env, fd, &result);
  if (status != napi_ok) close(fd);  // nobody else would ever close it
  NAPI_CALL(env, status);
  return result;
}

// fd, and an optional boolean (false when absent).
static bool fd_args(napi_env env, napi_callback_info info, int32_t* fd, bool* flag) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), false);
  if (argc < 1) {
    throw_type(env, "ERR_INVALID_ARG_COUNT", "fd missing");
    return false;
  }
  if (!int_arg(env, argv[0], "fd", fd)) return false;
  *flag = false;
  napi_valuetype type = napi_undefined;
  if (argc >= 2) NAPI_CHECK(env, napi_typeof(env, argv[1], &type), false);
  if (type == napi_boolean) NAPI_CHECK(env, napi_get_value_bool(env, argv[1], flag), false);
  return true;
}

// dupFd(fd): a close-on-exec duplicate (the listening socket taken from node:net's server before it closes).
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  bool unused;
  napi_value result;
  if (!fd_args(env, info, &fd, &unused)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return throw_errno(env, "dup", errno);
  napi_status status = napi_create_int32(env, copy, &result);
  if (status != napi_ok) close(copy);  // nobody else would ever close it
  NAPI_CALL(env, status);
  return result;
}

// closeFd(fd, reset): closes an accepted socket; reset: with SO_LINGER 0 first, so the client gets an RST (what
// node:net's resetAndDestroy does) rather than a FIN. A close that fails (EBADF) throws.
static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  bool reset;
  if (!fd_args(env, info, &fd, &reset)) return NULL;
  struct linger linger = {1, 0};
  if (reset) (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_default, NULL},
      {"setMark", NULL, set_mark, NULL, NULL, NULL, napi_default, NULL},
      {"getMark", NULL, get_mark, NULL, NULL, NULL, napi_default, NULL},
      {"pendingError", NULL, pending_error, NULL, NULL, NULL, napi_default, NULL},
      {"localAddress", NULL, local_address, NULL, NULL, NULL, napi_default, NULL},
      {"tcpInfo", NULL, tcp_info, NULL, NULL, NULL, napi_default, NULL},
      {"transparentSocket", NULL, transparent_socket, NULL, NULL, NULL, napi_default, NULL},
      {"dupFd", NULL, dup_fd, NULL, NULL, NULL, napi_default, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  if (!relay_define(env, exports) || !netns_define(env, exports) || !unix_fds_define(env, exports) ||
      !acceptor_define(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
