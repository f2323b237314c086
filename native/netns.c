// netns_socket (netns.h), and its JavaScript face netnsSocket(options) (typed in src/native/netns.ts): a socket
// made in a pod's network namespace and set up as asked, its fd for node:net to take (server.listen({ fd }),
// dgram's bind({ fd }), new Socket({ fd }).connect()). Errors as in sockopt.c: a failed syscall throws node's
// errno shape (code, errno negative, syscall), a bad option a TypeError or RangeError naming it.
#define _GNU_SOURCE  // setns
#include "netns.h"
#include "faults.h"
#include "napi-util.h"
#include "transparent.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct job {
  int netns_fd, family, type, fd, err;
  const char* syscall;
} job;

// setns moves only the calling thread, and this thread ends right after: no other thread ever runs in the
// pod's namespace, and a socket keeps the namespace it was made in for its whole life.
static void* in_netns(void* arg) {
  job* j = arg;
  if (FAULT(FAULT_NETNS_SETNS) ? (errno = EPERM, true) : setns(j->netns_fd, CLONE_NEWNET) != 0) {
    j->err = errno;
    j->syscall = "setns";
  } else if ((j->fd = socket(j->family, j->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
    j->err = errno;
    j->syscall = "socket";
  }
  return NULL;
}

int netns_socket(int netns_fd, int family, int type, int* out_fd, const char** syscall) {
  job j = {netns_fd, family, type, -1, 0, NULL};
  if (netns_fd == -1) {
    if ((j.fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
      j.err = errno;
      j.syscall = "socket";
    }
  } else {
    pthread_t thread;
    int rc = FAULT(FAULT_NETNS_THREAD) ? EAGAIN : pthread_create(&thread, NULL, in_netns, &j);
    if (rc) {
      j.err = rc;
      j.syscall = "pthread_create";
    } else {
      (void)pthread_join(thread, NULL);  // a joinable thread of ours, joined once: it cannot fail
    }
  }
  if (j.err) {
    *syscall = j.syscall;
    errno = j.err;
    return j.err;
  }
  *out_fd = j.fd;
  return 0;
}

static bool option(napi_env env, napi_value obj, const char* key, napi_value* v, napi_valuetype* type) {
  NAPI_CHECK(env, napi_get_named_property(env, obj, key, v), false);
  NAPI_CHECK(env, napi_typeof(env, *v, type), false);
  return true;
}

// An optional boolean option: undefined is false.
static bool bool_option(napi_env env, napi_value obj, const char* key, bool* out) {
  napi_value v;
  napi_valuetype type;
  char message[64];
  *out = false;
  if (!option(env, obj, key, &v, &type)) return false;
  if (type == napi_undefined) return true;
  if (type != napi_boolean) {
    snprintf(message, sizeof message, "%s must be a boolean", key);
    throw_type(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  NAPI_CHECK(env, napi_get_value_bool(env, v, out), false);
  return true;
}

// An integer option from min to max (a TypeError for a non-integer, a RangeError outside); *given says whether
// it was there, and a required one that is not is a TypeError.
static bool int_option(napi_env env, napi_value obj, const char* key, bool required, int32_t min, int32_t max,
                       int32_t* out, bool* given) {
  napi_value v;
  napi_valuetype type;
  char message[96];
  *given = false;
  if (!option(env, obj, key, &v, &type)) return false;
  if (type == napi_undefined && !required) return true;
  if (!int_arg(env, v, key, out)) return false;
  if (*out < min || *out > max) {
    snprintf(message, sizeof message, "%s must be %d to %d", key, (int)min, (int)max);
    NAPI_CHECK(env, napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message), false);
    return false;
  }
  *given = true;
  return true;
}

typedef struct request {
  int32_t netns, family, mark, backlog;
  bool tcp, transparent, freebind, reuse, bind, listen;
  struct sockaddr_storage addr;
  socklen_t len;
} request;

// Every option checked before a socket exists, so a bad one leaves nothing to close.
static bool read_request(napi_env env, napi_value opts, request* r) {
  napi_value v;
  napi_valuetype type;
  char text[ADDRESS_TEXT_MAX] = "", kind[8] = "", message[128];
  int32_t port = 0;
  bool given, has_port, has_address;
  memset(r, 0, sizeof *r);
  if (!int_option(env, opts, "netns", true, INT32_MIN, INT32_MAX, &r->netns, &given) ||
      !int_option(env, opts, "family", true, INT32_MIN, INT32_MAX, &r->family, &given)) {
    return false;
  }
  const char* range = r->netns < -1 ? "netns must be a file descriptor (0 or more) or -1"
                      : r->family != 4 && r->family != 6 ? "family must be 4 or 6"
                                                        : NULL;
  if (range) {
    NAPI_CHECK(env, napi_throw_range_error(env, "ERR_OUT_OF_RANGE", range), false);
    return false;
  }
  if (!option(env, opts, "type", &v, &type)) return false;
  if (type == napi_string) NAPI_CHECK(env, napi_get_value_string_utf8(env, v, kind, sizeof kind, NULL), false);
  if (strcmp(kind, "tcp") != 0 && strcmp(kind, "udp") != 0) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "type must be 'tcp' or 'udp'");
    return false;
  }
  r->tcp = kind[0] == 't';
  if (!option(env, opts, "address", &v, &type)) return false;
  has_address = type != napi_undefined;
  if (has_address && !address_text(env, v, "address", text)) return false;
  if (!int_option(env, opts, "port", false, 0, 65535, &port, &has_port) ||
      !int_option(env, opts, "mark", false, INT32_MIN, INT32_MAX, &r->mark, &given) ||
      !int_option(env, opts, "listen", false, 0, INT32_MAX, &r->backlog, &r->listen) ||
      !bool_option(env, opts, "transparent", &r->transparent) || !bool_option(env, opts, "freebind", &r->freebind) ||
      !bool_option(env, opts, "reuseAddr", &r->reuse)) {
    return false;
  }
  if (r->listen && !r->tcp) {
    throw_type(env, "ERR_INVALID_ARG_VALUE", "listen needs type 'tcp'");
    return false;
  }
  r->bind = has_address || has_port;
  if (!has_address) strcpy(text, r->family == 6 ? "::" : "0.0.0.0");
  if (!sockaddr_parse(env, text, (uint16_t)port, &r->addr, &r->len)) return false;
  if (r->addr.ss_family != (r->family == 6 ? AF_INET6 : AF_INET)) {
    snprintf(message, sizeof message, "address %s is not an IPv%d address (family %d)", text, (int)r->family,
             (int)r->family);
    throw_type(env, "ERR_INVALID_ARG_VALUE", message);
    return false;
  }
  return true;
}

// netnsSocket({ netns, family, type, address?, port?, transparent?, freebind?, mark?, reuseAddr?, listen? }):
// the fd of a non-blocking socket made in netns (-1: this namespace), with, in this order, IP(V6)_TRANSPARENT
// and SO_MARK, IP(V6)_FREEBIND, SO_REUSEADDR and TCP_NODELAY (tcp) set, bound when address or port is given
// (the family's wildcard without an address) and listening with backlog `listen`. Closed on any failure.
static napi_value netns_socket_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_valuetype type = napi_undefined;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_object) return throw_type(env, "ERR_INVALID_ARG_TYPE", "netnsSocket(options): options must be an object");
  request r;
  if (!read_request(env, argv[0], &r)) return NULL;

  int af = r.family == 6 ? AF_INET6 : AF_INET, fd = -1, on = 1;
  const char* failed = NULL;
  int err = netns_socket(r.netns, af, r.tcp ? SOCK_STREAM : SOCK_DGRAM, &fd, &failed);
  if (err) return throw_errno(env, failed, err);
  failed = transparent_setup(fd, af, r.transparent, r.mark);
  if (!failed && r.freebind &&
      (af == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_FREEBIND, &on, sizeof on) : setsockopt(fd, SOL_IP, IP_FREEBIND, &on, sizeof on))) {
    failed = af == AF_INET6 ? "setsockopt(IPV6_FREEBIND)" : "setsockopt(IP_FREEBIND)";
  }
  if (!failed && r.reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)) failed = "setsockopt(SO_REUSEADDR)";
  if (!failed && r.tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on)) failed = "setsockopt(TCP_NODELAY)";
  if (!failed && r.bind && bind(fd, (struct sockaddr*)&r.addr, r.len)) failed = "bind";
  if (!failed && r.listen && listen(fd, r.backlog)) failed = "listen";
  if (failed) {
    err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  napi_status status = napi_create_int32(env, fd, &result);
  if (status != napi_ok) close(fd);  // nobody else would ever close it
  NAPI_CALL(env, status);
  return result;
}

// faultsReset(): native/faults.h's counters start over with SIDECAR_LAB_FAULTS as it is now (the fault tests
// set it per test); true when this is the fault-injection build, false (and nothing done) otherwise.
static napi_value faults_reset(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  FAULTS_INIT();
  NAPI_CALL(env, napi_get_boolean(env, FAULTS_BUILD, &result));
  return result;
}

bool netns_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsSocket", NULL, netns_socket_js, NULL, NULL, NULL, napi_default, NULL},
      {"faultsReset", NULL, faults_reset, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props), false);
  return true;
}
