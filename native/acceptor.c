// The native engine's accept (issue 18): a libuv poll handle on the JS thread's own loop watches a listening fd,
// and each time it is readable accept4() takes up to ACCEPT_ROUND connections, sets TCP_NODELAY (as node:net's
// noDelay server did), reads the peer from accept's own sockaddr and SO_ORIGINAL_DST, and hands them to JS in
// ONE call. No node:net Socket is built and destroyed per connection (a tenth of its CPU in the profile), and
// the main thread makes three syscalls per connection here. Every fd in a batch is JS's to close (sockopt.c's
// closeFd) or to give to relayAdd; every fd this file accepted and could not hand over it closes itself.
#define _GNU_SOURCE  // accept4
#include "napi-util.h"
#include "faults.h"

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Connections per round: a full backlog is taken over several rounds, so timers and the relay's events are
// not held up behind thousands of accepts (libuv accepts until EAGAIN; node then builds a Socket for each).
// Fewer when the descriptor budget is short: see round_size.
#define ACCEPT_ROUND 128

typedef struct acceptor {
  uv_poll_t poll;  // first: libuv's handle pointer is the acceptor's
  napi_env env;
  napi_ref on_batch;
  napi_ref budget;  // an Int32Array: [0] the descriptors the listeners may still take (fd-budget.ts), or NULL
  napi_async_context context;
  int fd;       // the listening socket, ours to close
  int reserve;  // libuv's EMFILE trick: a descriptor kept to be given up for one accept
  bool stopped, closed, finalized;  // freed when libuv let go of the handle AND JS of the external
} acceptor;

static int open_reserve(void) {
  return open("/", O_RDONLY | O_CLOEXEC);
}

static void maybe_free(acceptor* a) {
  if (a->closed && a->finalized) free(a);
}

static void on_closed(uv_handle_t* handle) {
  acceptor* a = (acceptor*)handle;
  a->closed = true;
  maybe_free(a);
}

static void stop(acceptor* a) {
  if (a->stopped) return;
  a->stopped = true;
  uv_poll_stop(&a->poll);
  close(a->fd);
  if (a->reserve >= 0) close(a->reserve);
  napi_delete_reference(a->env, a->on_batch);
  if (a->budget) napi_delete_reference(a->env, a->budget);
  napi_async_destroy(a->env, a->context);
  uv_close((uv_handle_t*)&a->poll, on_closed);
}

// Every fd of a round is open at once until JS has the batch, refused ones too: with node:net, libuv's accept
// loop let each be refused and closed before the next accept. So a round takes at most what the budget has
// for whole connections (two descriptors each), and one when it has none, to be refused as node:net would.
static uint32_t round_size(acceptor* a) {
  napi_value array;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = NULL;
  if (!a->budget || napi_get_reference_value(a->env, a->budget, &array) != napi_ok || !array ||
      napi_get_typedarray_info(a->env, array, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_int32_array || length < 1) {
    return ACCEPT_ROUND;
  }
  int32_t whole = ((const int32_t*)data)[0] / 2;
  return whole < 1 ? 1 : whole > ACCEPT_ROUND ? ACCEPT_ROUND : (uint32_t)whole;
}

// The external's finalizer: the JS side dropped its handle (acceptorStop ran before, or the env is going away).
static void finalize(napi_env env, void* data, void* hint) {
  (void)env, (void)hint;
  acceptor* a = data;
  stop(a);
  a->finalized = true;
  maybe_free(a);
}

// Out of descriptors (EMFILE, ENFILE): a connection left in the backlog keeps the listening fd readable, and
// the loop would spin. As libuv does: give up the reserve, accept and close what is pending, take it back.
// Returns how many connections were closed so; the listener counts the event (sidecar.fd_exhausted).
static int emfile_trick(acceptor* a) {
  if (a->reserve < 0) a->reserve = open_reserve();
  if (a->reserve < 0) return 0;
  close(a->reserve);
  a->reserve = -1;
  int dropped = 0, fd;
  while ((fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR) {
    if (fd >= 0) close(fd), dropped++;
  }
  a->reserve = open_reserve();
  return dropped;
}

// One accepted connection as JS takes it: { fd, remote: { address, port, family }, dst? }. dst is where it was
// headed before NAT (SO_ORIGINAL_DST), absent when it was not redirected (ENOENT), as originalDst() says.
// An IPv4 client of a dual-stack listener asks the IPv4 table: conntrack holds an IPv4 tuple.
static bool entry_value(napi_env env, int fd, const struct sockaddr_storage* peer, napi_value* out) {
  napi_value value, fd_value, remote, dst;
  if (FAULT(FAULT_ACCEPT_BATCH)) return false;
  const struct sockaddr_in6* p6 = (const struct sockaddr_in6*)peer;
  bool v6 = peer->ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  int rc = v6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (napi_create_object(env, &value) != napi_ok || napi_create_int32(env, fd, &fd_value) != napi_ok ||
      napi_set_named_property(env, value, "fd", fd_value) != napi_ok || !(remote = address_object(env, peer)) ||
      napi_set_named_property(env, value, "remote", remote) != napi_ok) {
    return false;
  }
  // Any error but ENOENT (none expected on a socket just accepted) is reported as originalDst's throw was.
  if (rc == 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
    if (!(dst = address_object(env, &ss)) || napi_set_named_property(env, value, "dst", dst) != napi_ok) return false;
  } else if (rc != 0 && errno != ENOENT) {
    napi_value error = errno_error(env, "getsockopt(SO_ORIGINAL_DST)", errno, NULL);
    if (!error || napi_set_named_property(env, value, "dstError", error) != napi_ok) return false;
  }
  *out = value;
  return true;
}

// { error } in a batch: accept4's errno as node's error (EMFILE, ENFILE), dropped: the connections closed for it.
static bool error_value(napi_env env, int err, int dropped, napi_value* out) {
  napi_value value, error, count;
  if (napi_create_object(env, &value) != napi_ok || !(error = errno_error(env, "accept4", err, NULL)) ||
      napi_set_named_property(env, value, "error", error) != napi_ok || napi_create_int32(env, dropped, &count) != napi_ok ||
      napi_set_named_property(env, value, "dropped", count) != napi_ok) {
    return false;
  }
  *out = value;
  return true;
}

// Hands an exception to node as an uncaught one: the onBatch callback's own, or a batch that could not be built.
static void raise_uncaught(napi_env env) {
  napi_value exception;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "SIDECAR_ERR_NAPI", "acceptor: a batch of connections could not be handed to JS");
  if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
}

static void on_readable(uv_poll_t* poll, int status, int events) {
  (void)events;
  acceptor* a = (acceptor*)poll;
  napi_env env = a->env;
  int fds[ACCEPT_ROUND];
  uint32_t n = 0, len = 0;
  napi_handle_scope scope;
  napi_value batch, value, fn, recv;
  if (status < 0) return;  // EBADF and the like: the next round's accept4 says what it is
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;  // the connections wait in the backlog
  if (napi_create_array(env, &batch) != napi_ok) goto fail;
  uint32_t most = round_size(a);
  while (n < most) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(a->fd, (struct sockaddr*)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;  // gone before it was taken (libuv skips them)
      if (err != EMFILE && err != ENFILE) break;  // EAGAIN: the backlog is empty
      if (!error_value(env, err, emfile_trick(a), &value) || napi_set_element(env, batch, len++, value) != napi_ok) goto fail;
      break;
    }
    fds[n++] = fd;
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // as node:net's noDelay, whose failure it ignores
    if (!entry_value(env, fd, &peer, &value) || napi_set_element(env, batch, len++, value) != napi_ok) goto fail;
  }
  if (len > 0) {
    if (napi_get_reference_value(env, a->on_batch, &fn) != napi_ok || napi_get_global(env, &recv) != napi_ok) goto fail;
    // From here the fds are JS's, whatever the callback does; an exception it throws is an uncaught one.
    if (napi_make_callback(env, a->context, recv, fn, 1, &batch, NULL) != napi_ok) raise_uncaught(env);
  }
  napi_close_handle_scope(env, scope);
  return;
fail:
  for (uint32_t i = 0; i < n; i++) close(fds[i]);
  raise_uncaught(env);
  napi_close_handle_scope(env, scope);
}

// What acceptorStart made before it failed, undone; the listening fd stays the caller's.
static napi_value start_failed(acceptor* a, bool polled, const char* syscall, int err) {
  napi_env env = a->env;
  if (a->reserve >= 0) close(a->reserve);
  napi_delete_reference(env, a->on_batch);
  if (a->budget) napi_delete_reference(env, a->budget);
  napi_async_destroy(env, a->context);
  if (polled) {
    a->stopped = a->finalized = true;
    uv_close((uv_handle_t*)&a->poll, on_closed);  // an initialized handle is libuv's until closed
  } else {
    free(a);
  }
  return throw_errno(env, syscall, err);
}

// acceptorStart(listenFd, onBatch, budget?): polls listenFd (non-blocking, listening) and calls onBatch(entries)
// once per readable round; budget, an Int32Array, bounds each round (round_size). Returns the handle for acceptorStop, which closes listenFd: the acceptor owns it once started.
// Throws a TypeError for a bad argument, ENOMEM, or the poll's errno (EBADF for a closed fd); then the fd is
// still the caller's.
static napi_value acceptor_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle, name;
  napi_valuetype type;
  bool typed = false;
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "ERR_INVALID_ARG_COUNT", "acceptorStart(listenFd, onBatch, budget?)");
  if (!int_arg(env, argv[0], "listenFd", &fd)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &type));
  if (type != napi_function) return throw_type(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
  if (argc >= 3) NAPI_CALL(env, napi_typeof(env, argv[2], &type));
  if (argc >= 3 && type != napi_undefined && (napi_is_typedarray(env, argv[2], &typed) != napi_ok || !typed)) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "budget must be an Int32Array");
  }
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  NAPI_CALL(env, napi_create_string_utf8(env, "sidecar:acceptor", NAPI_AUTO_LENGTH, &name));
  acceptor* a = FAULT(FAULT_ACCEPT_ALLOC) ? NULL : calloc(1, sizeof *a);
  if (!a) return throw_errno(env, "malloc", ENOMEM);
  a->env = env;
  a->fd = fd;
  a->reserve = -1;
  if (napi_create_reference(env, argv[1], 1, &a->on_batch) != napi_ok) {
    free(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  if (typed && napi_create_reference(env, argv[2], 1, &a->budget) != napi_ok) {
    napi_delete_reference(env, a->on_batch);
    free(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  if (napi_async_init(env, NULL, name, &a->context) != napi_ok) {
    napi_delete_reference(env, a->on_batch);
    if (a->budget) napi_delete_reference(env, a->budget);
    free(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  int err = uv_poll_init(loop, &a->poll, fd);
  if (err != 0) return start_failed(a, false, "uv_poll_init", -err);
  if ((err = uv_poll_start(&a->poll, UV_READABLE, on_readable)) != 0) return start_failed(a, true, "uv_poll_start", -err);
  a->reserve = open_reserve();
  if (FAULT(FAULT_ACCEPT_EXTERNAL) || napi_create_external(env, a, finalize, NULL, &handle) != napi_ok) {
    uv_poll_stop(&a->poll);
    return start_failed(a, true, "napi_create_external", ENOMEM);
  }
  return handle;
}

static bool handle_arg(napi_env env, napi_callback_info info, acceptor** out) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL), false);
  if (argc >= 1) NAPI_CHECK(env, napi_typeof(env, argv[0], &type), false);
  if (type != napi_external) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "handle must be acceptorStart's");
    return false;
  }
  NAPI_CHECK(env, napi_get_value_external(env, argv[0], (void**)out), false);
  return true;
}

// acceptorStop(handle): no more rounds, and the listening fd closed (connections in its backlog are reset by
// the kernel). Again: nothing.
static napi_value acceptor_stop(napi_env env, napi_callback_info info) {
  acceptor* a;
  if (!handle_arg(env, info, &a)) return NULL;
  stop(a);
  return NULL;
}

bool acceptor_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"acceptorStart", NULL, acceptor_start, NULL, NULL, NULL, napi_default, NULL},
      {"acceptorStop", NULL, acceptor_stop, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props), false);
  return true;
}
