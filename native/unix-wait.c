// The waiting half of unix-fds.c: recvWithFds, acceptAsync and recvCancel. A recv or accept waits in a libuv
// poll handle on the JS thread's own loop and settles a promise when the fd is readable: nothing blocks the JS
// thread, nothing spins, and no threadpool thread is held for a connection's life (async work would hold one
// per waiting fd: four waits and node's fs and dns would stop). Every fd this file hands to JS is JS's to close;
// every fd it received and could not hand over it closes itself.
#define _GNU_SOURCE  // accept4, MSG_CMSG_CLOEXEC
#include "unix-fds.h"
#include "faults.h"

#include <uv.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum { WAIT_RECV, WAIT_ACCEPT } wait_kind;

typedef struct waiter {
  uv_poll_t poll;  // first: libuv's handle pointer is the waiter's
  napi_env env;
  napi_deferred deferred;
  napi_async_context context;
  int fd;
  wait_kind kind;
  struct waiter* next;
  char buf[];  // MESSAGE_MAX bytes for a recv
} waiter;

typedef struct received {
  size_t len;
  bool eof, truncated, ctruncated;
  int fds[FDS_MAX];
  size_t nfds;
} received;

// The pending waits of this thread's loop; JS-thread only (the poll callbacks run there too).
static waiter* waiters;
static bool hook_added;

static void free_waiter(uv_handle_t* handle) {
  free(handle);
}

// Takes w off the list (a new wait on its fd may start from here on) ...
static void waiter_unlink(waiter* w) {
  for (waiter** p = &waiters; *p; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      return;
    }
  }
}

// ... and, once nothing runs in its async context, closes its poll handle; libuv frees it once it lets go.
// The fd stays open.
static void waiter_free(waiter* w) {
  napi_async_destroy(w->env, w->context);
  uv_close((uv_handle_t*)&w->poll, free_waiter);
}

static void close_received(int accepted, const received* r) {
  if (accepted >= 0) close(accepted);
  for (size_t i = 0; i < r->nfds; i++) close(r->fds[i]);
}

// The settled value: the accepted fd, null at the end of the stream, or { data, fds }. NULL when it could not
// be built: then the fds are closed, since nobody else holds them.
static napi_value result_value(napi_env env, const waiter* w, int accepted, const received* r) {
  napi_value value, data, fds, fd;
  if (FAULT(FAULT_FDS_RESULT)) goto fail;
  if (w->kind == WAIT_ACCEPT) {
    if (napi_create_int32(env, accepted, &value) != napi_ok) goto fail;
    return value;
  }
  if (r->eof) return napi_get_null(env, &value) == napi_ok ? value : NULL;
  if (napi_create_buffer_copy(env, r->len, w->buf, NULL, &data) != napi_ok ||
      napi_create_array_with_length(env, r->nfds, &fds) != napi_ok || napi_create_object(env, &value) != napi_ok) {
    goto fail;
  }
  for (size_t i = 0; i < r->nfds; i++) {
    if (napi_create_int32(env, r->fds[i], &fd) != napi_ok || napi_set_element(env, fds, (uint32_t)i, fd) != napi_ok) goto fail;
  }
  if (napi_set_named_property(env, value, "data", data) != napi_ok ||
      napi_set_named_property(env, value, "fds", fds) != napi_ok) {
    goto fail;
  }
  return value;
fail:
  close_received(accepted, r);
  return NULL;
}

// Settles w's promise (err, a positive errno, rejects) inside a callback scope, so that the promise's reactions
// run now rather than whenever node next calls into JS, and ends w.
static void settle(waiter* w, int err, int accepted, const received* r) {
  napi_env env = w->env;
  napi_handle_scope handles;
  napi_callback_scope scope;
  napi_value resource, value = NULL, error = NULL, exception;
  const char* syscall = w->kind == WAIT_ACCEPT ? "accept4" : "recvmsg";
  // Off the list and unwatched before any JS runs: a reaction may start the fd's next wait at once.
  waiter_unlink(w);
  uv_poll_stop(&w->poll);
  if (napi_open_handle_scope(env, &handles) != napi_ok) {
    close_received(accepted, r);
    waiter_free(w);
    return;
  }
  bool scoped = napi_create_object(env, &resource) == napi_ok &&
                napi_open_callback_scope(env, resource, w->context, &scope) == napi_ok;
  if (err) {
    error = errno_error(env, syscall, err, NULL);
  } else if (r->truncated || r->ctruncated) {
    close_received(-1, r);
    char message[96];
    if (r->truncated) snprintf(message, sizeof message, "message truncated: more than %d bytes", MESSAGE_MAX);
    else snprintf(message, sizeof message, "control data truncated: more than %d fds", FDS_MAX);
    error = errno_error(env, syscall, EMSGSIZE, message);
  } else if (!(value = result_value(env, w, accepted, r))) {
    napi_get_and_clear_last_exception(env, &exception);
    error = errno_error(env, syscall, ENOMEM, "the result could not be handed to JS (its fds were closed)");
  }
  if (value) napi_resolve_deferred(env, w->deferred, value);
  else if (error) napi_reject_deferred(env, w->deferred, error);
  if (scoped) napi_close_callback_scope(env, scope);
  napi_close_handle_scope(env, handles);
  waiter_free(w);
}

static bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

// One recvmsg without waiting; -1 with errno when it failed (EAGAIN: nothing there after all).
static int receive(waiter* w, received* r) {
  union {
    char space[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {w->buf, MESSAGE_MAX};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.space;
  msg.msg_controllen = sizeof control.space;
  ssize_t n = recvmsg(w->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (r->nfds < FDS_MAX) r->fds[r->nfds++] = fd;
      else close(fd);  // cannot happen with this control buffer's size; if it did, the fd is still ours
    }
  }
  r->len = (size_t)n;
  // A zero-length message reads as the end of the stream: sendWithFds refuses to send one.
  r->eof = n == 0 && r->nfds == 0;
  r->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  r->ctruncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  return 0;
}

// On the JS thread, when the fd is readable, hung up or in error. libuv reports POLLERR as UV_EBADF and stops
// the handle; a Unix socket raises it for a pending socket error (the peer closed with our data unread:
// ECONNRESET), so the syscall is tried anyway and says what happened (or hands over what is still queued).
static void on_ready(uv_poll_t* handle, int status, int events) {
  (void)events;
  waiter* w = (waiter*)handle;
  received r;
  memset(&r, 0, sizeof r);
  int err = 0, accepted = -1;
  if (w->kind == WAIT_ACCEPT) {
    accepted = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (accepted < 0) err = errno == ECONNABORTED ? EAGAIN : errno;
  } else if (receive(w, &r) != 0) {
    err = errno;
  }
  if (err && would_block(err)) {
    if (status == 0) return;  // woken for nothing: keep waiting
    err = -status;
  }
  settle(w, err, accepted, &r);
}

static void cleanup_hook(void* arg) {
  (void)arg;
  while (waiters) {
    waiter* w = waiters;
    waiter_unlink(w);
    waiter_free(w);
  }
}

// Starts a wait on fd: the promise settles from on_ready. One wait per fd at a time (EBUSY).
static napi_value wait_start(napi_env env, napi_callback_info info, wait_kind kind) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  int32_t fd;
  const char* syscall = kind == WAIT_ACCEPT ? "accept4" : "recvmsg";
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "ERR_INVALID_ARG_COUNT", kind == WAIT_ACCEPT ? "acceptAsync(fd)" : "recvWithFds(fd)");
  if (!int_arg(env, argv[0], "fd", &fd)) return NULL;
  for (waiter* w = waiters; w; w = w->next) {
    if (w->fd == fd) return throw_errno(env, syscall, EBUSY);
  }
  uv_loop_t* loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  waiter* w = FAULT(FAULT_FDS_ALLOC) ? NULL : calloc(1, sizeof *w + (kind == WAIT_RECV ? MESSAGE_MAX : 0));
  if (!w) return throw_errno(env, "malloc", ENOMEM);
  w->env = env;
  w->fd = fd;
  w->kind = kind;
  // uv_poll_init refuses an fd epoll cannot watch (a regular file: EPERM) and one node already polls (EEXIST).
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -rc);
  }
  napi_status status = napi_create_string_utf8(env, "sidecar-lab:unix-fds", NAPI_AUTO_LENGTH, &name);
  if (status == napi_ok) status = napi_async_init(env, NULL, name, &w->context);
  if (status != napi_ok) {
    uv_close((uv_handle_t*)&w->poll, free_waiter);
    NAPI_CALL(env, status);
  }
  rc = uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, on_ready);
  status = rc == 0 ? napi_create_promise(env, &w->deferred, &promise) : napi_ok;
  if (rc != 0 || status != napi_ok) {
    waiter_free(w);
    if (rc != 0) return throw_errno(env, "uv_poll_start", -rc);
    NAPI_CALL(env, status);
  }
  w->next = waiters;
  waiters = w;
  if (!hook_added) {
    NAPI_CALL(env, napi_add_env_cleanup_hook(env, cleanup_hook, NULL));
    hook_added = true;
  }
  return promise;
}

// recvWithFds(fd) -> Promise<{ data, fds } | null>: the next message and the fds it carried (close-on-exec, JS's
// to close), or null when the peer closed. A message over MESSAGE_MAX bytes or FDS_MAX fds rejects EMSGSIZE,
// the fds that came with it closed.
napi_value unix_recv_with_fds(napi_env env, napi_callback_info info) {
  return wait_start(env, info, WAIT_RECV);
}

// acceptAsync(fd) -> Promise<fd>: the next connection on a listener, non-blocking and close-on-exec.
napi_value unix_accept_async(napi_env env, napi_callback_info info) {
  return wait_start(env, info, WAIT_ACCEPT);
}

// recvCancel(fd) -> boolean: rejects fd's pending recvWithFds or acceptAsync with ECANCELED and stops watching
// it; false when none was pending. A caller closes an fd only after this (and the promise settled): libuv must
// not poll a closed fd, nor a recvmsg read an fd number that was since reused.
napi_value unix_recv_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, error;
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "ERR_INVALID_ARG_COUNT", "recvCancel(fd)");
  if (!int_arg(env, argv[0], "fd", &fd)) return NULL;
  waiter* w = waiters;
  while (w && w->fd != fd) w = w->next;
  if (w) {
    waiter_unlink(w);
    error = errno_error(env, w->kind == WAIT_ACCEPT ? "accept4" : "recvmsg", ECANCELED, "cancelled (the socket is closing)");
    if (error) napi_reject_deferred(env, w->deferred, error);
    waiter_free(w);
  }
  NAPI_CALL(env, napi_get_boolean(env, w != NULL, &result));
  return result;
}
