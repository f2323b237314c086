// Helpers shared by the addon's Node-API files (sockopt.c, relay-napi.c, netns.c), defined in napi-util.c.
#ifndef SIDECAR_NAPI_UTIL_H
#define SIDECAR_NAPI_UTIL_H
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

// Every Node-API call goes through here: on failure, throw (unless the call already left an exception
// pending) and return `fail` from the calling function. NAPI_CALL is the form for napi_value functions.
#define NAPI_CHECK(env, call, fail)                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      const napi_extended_error_info* info_ = NULL;                         \
      bool pending_ = false;                                                \
      napi_get_last_error_info((env), &info_);                              \
      napi_is_exception_pending((env), &pending_);                          \
      if (!pending_) {                                                      \
        napi_throw_error((env), "SIDECAR_ERR_NAPI",                         \
                         info_ && info_->error_message ? info_->error_message \
                                                       : "Node-API call failed"); \
      }                                                                     \
      return fail;                                                          \
    }                                                                       \
  } while (0)
#define NAPI_CALL(env, call) NAPI_CHECK(env, call, NULL)

napi_value errno_error(napi_env env, const char* syscall, int err, const char* message);
napi_value throw_errno(napi_env env, const char* syscall, int err);
napi_value throw_type(napi_env env, const char* code, const char* message);
bool int_arg(napi_env env, napi_value value, const char* name, int32_t* out);
napi_value address_object(napi_env env, const struct sockaddr_storage* ss);

// An address argument's text: a string of at most INET6_ADDRSTRLEN characters. Throws a TypeError
// "<name> must be a string", or EINVAL (syscall inet_pton) for a longer one.
#define ADDRESS_TEXT_MAX (INET6_ADDRSTRLEN + 1)
bool address_text(napi_env env, napi_value value, const char* name, char text[ADDRESS_TEXT_MAX]);
// An IPv4 or IPv6 address and a port as a sockaddr; throws EINVAL (syscall inet_pton) for anything else.
bool sockaddr_parse(napi_env env, const char* text, uint16_t port, struct sockaddr_storage* ss, socklen_t* len);

// relay-napi.c: adds relayStart, relayAdd, relayAbort, relayTcpInfo, relayStop, relayStats to exports.
bool relay_define(napi_env env, napi_value exports);
// netns.c: adds netnsSocket and faultsReset to exports.
bool netns_define(napi_env env, napi_value exports);
// unix-fds.c: adds seqpacketConnect, seqpacketListen, sendWithFds, recvWithFds, acceptAsync, recvCancel.
bool unix_fds_define(napi_env env, napi_value exports);
// acceptor.c: adds acceptorStart and acceptorStop.
bool acceptor_define(napi_env env, napi_value exports);

#endif
