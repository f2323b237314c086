// Shared by unix-fds.c (sockets, send, the exports) and unix-wait.c (recv and accept waits).
#ifndef SIDECAR_UNIX_FDS_H
#define SIDECAR_UNIX_FDS_H
#include "napi-util.h"

// One message's limits, on both ends: ZDS sends one fd with an add and messages of a few hundred bytes, so a
// message beyond them is refused as truncated (EMSGSIZE) rather than cut.
#define FDS_MAX 16
#define MESSAGE_MAX 65536

// unix-wait.c: recvWithFds, acceptAsync, recvCancel.
napi_value unix_recv_with_fds(napi_env env, napi_callback_info info);
napi_value unix_accept_async(napi_env env, napi_callback_info info);
napi_value unix_recv_cancel(napi_env env, napi_callback_info info);

#endif
