// Unix sockets for ambient mode's ZDS (src/ambient/zds.ts): SOCK_SEQPACKET, as istio-cni's node agent
// ("unixpacket") and ztunnel use it, and messages that carry fds (SCM_RIGHTS). node:net does neither. This file
// makes the sockets and sends; unix-wait.c receives and accepts.
#include "unix-fds.h"
#include "faults.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

// Reads a path argument into sun_path; ENAMETOOLONG (syscall "bind" or "connect") for one that does not fit.
static bool path_arg(napi_env env, napi_value value, const char* syscall, struct sockaddr_un* addr) {
  napi_valuetype type;
  size_t len = 0;
  char path[sizeof addr->sun_path + 1];
  NAPI_CHECK(env, napi_typeof(env, value, &type), false);
  if (type != napi_string) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return false;
  }
  NAPI_CHECK(env, napi_get_value_string_utf8(env, value, path, sizeof path, &len), false);
  if (len == 0 || len >= sizeof addr->sun_path || strlen(path) != len) {
    throw_errno(env, syscall, len == 0 || strlen(path) != len ? EINVAL : ENAMETOOLONG);
    return false;
  }
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, len + 1);
  return true;
}

static napi_value fd_value(napi_env env, int fd) {
  napi_value result;
  napi_status status = napi_create_int32(env, fd, &result);
  if (status != napi_ok) close(fd);  // nobody else would ever close it
  NAPI_CALL(env, status);
  return result;
}

// seqpacketConnect(path) -> fd: a non-blocking SOCK_SEQPACKET client, connected. A Unix socket connects at
// once or not at all: EAGAIN is a listener whose backlog is full, ECONNREFUSED one nobody accepts on.
static napi_value seqpacket_connect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct sockaddr_un addr;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "ERR_INVALID_ARG_COUNT", "seqpacketConnect(path)");
  if (!path_arg(env, argv[0], "connect", &addr)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "connect", err);
  }
  return fd_value(env, fd);
}

// seqpacketListen(path, backlog) -> fd: a non-blocking SOCK_SEQPACKET listener bound to path (EADDRINUSE when
// path exists: removing a stale socket file is the caller's decision, as istio-cni's).
static napi_value seqpacket_listen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct sockaddr_un addr;
  int32_t backlog;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "ERR_INVALID_ARG_COUNT", "seqpacketListen(path, backlog)");
  if (!path_arg(env, argv[0], "bind", &addr) || !int_arg(env, argv[1], "backlog", &backlog)) return NULL;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  const char* failed = NULL;
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0) failed = "bind";
  else if (listen(fd, backlog) != 0) failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  return fd_value(env, fd);
}

// sendWithFds(fd, data, fds) -> bytes: one message, fds attached (SCM_RIGHTS; the caller keeps its own copies).
// Never waits: a full socket buffer throws EAGAIN, a peer gone EPIPE (MSG_NOSIGNAL: no SIGPIPE).
static napi_value send_with_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], v;
  int32_t fd;
  bool is_buffer = false, is_array = false;
  void* data = NULL;
  size_t len = 0;
  uint32_t count = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "ERR_INVALID_ARG_COUNT", "sendWithFds(fd, data, fds)");
  if (!int_arg(env, argv[0], "fd", &fd)) return NULL;
  NAPI_CALL(env, napi_is_buffer(env, argv[1], &is_buffer));
  if (!is_buffer) return throw_type(env, "ERR_INVALID_ARG_TYPE", "data must be a Buffer");
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &len));
  NAPI_CALL(env, napi_is_array(env, argv[2], &is_array));
  if (!is_array) return throw_type(env, "ERR_INVALID_ARG_TYPE", "fds must be an array of fds");
  NAPI_CALL(env, napi_get_array_length(env, argv[2], &count));
  if (len == 0 || len > MESSAGE_MAX || count > FDS_MAX) {
    char message[96];
    snprintf(message, sizeof message, "a message is 1 to %d bytes with at most %d fds", MESSAGE_MAX, FDS_MAX);
    NAPI_CALL(env, napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message));
    return NULL;
  }
  int fds[FDS_MAX];
  for (uint32_t i = 0; i < count; i++) {
    NAPI_CALL(env, napi_get_element(env, argv[2], i, &v));
    if (!int_arg(env, v, "fds[i]", &fds[i])) return NULL;
  }
  union {
    char space[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct iovec iov = {data, len};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control.space;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
  }
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  NAPI_CALL(env, napi_create_double(env, (double)n, &v));
  return v;
}

// unixFdsFaults() -> boolean: rereads SIDECAR_LAB_FAULTS (counters start over) in the fault-injection build;
// whether this is that build.
static napi_value unix_fds_faults(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  FAULTS_INIT();
  NAPI_CALL(env, napi_get_boolean(env, FAULTS_BUILD, &result));
  return result;
}

bool unix_fds_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"seqpacketConnect", NULL, seqpacket_connect, NULL, NULL, NULL, napi_default, NULL},
      {"seqpacketListen", NULL, seqpacket_listen, NULL, NULL, NULL, napi_default, NULL},
      {"sendWithFds", NULL, send_with_fds, NULL, NULL, NULL, napi_default, NULL},
      {"recvWithFds", NULL, unix_recv_with_fds, NULL, NULL, NULL, napi_default, NULL},
      {"acceptAsync", NULL, unix_accept_async, NULL, NULL, NULL, napi_default, NULL},
      {"recvCancel", NULL, unix_recv_cancel, NULL, NULL, NULL, napi_default, NULL},
      {"unixFdsFaults", NULL, unix_fds_faults, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props), false);
  return true;
}
