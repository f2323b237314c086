// The helpers the addon's files share (declared in napi-util.h and transparent.h): node-style errors, argument
// and address conversions, and the transparent socket setup both sockopt.c's transparentSocket and the relay
// engine's upstream sockets (relay.c) need.
#include "napi-util.h"
#include "transparent.h"

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

// Makes the Error node throws for a failed syscall, err a positive errno: code from libuv (UV_E* is -errno on
// Unix), message "<syscall> <CODE>: <libuv's text>" or `message` when given. The _r forms write into our
// buffers: plain uv_err_name leaks a string for an errno libuv has no name for. NULL when it cannot be made.
napi_value errno_error(napi_env env, const char* syscall, int err, const char* message) {
  char name[64], text[128], line[320];
  uv_err_name_r(-err, name, sizeof name);
  uv_strerror_r(-err, text, sizeof text);
  snprintf(line, sizeof line, "%s %s: %s", syscall, name, message ? message : text);
  napi_value code, msg, error, errno_value, syscall_value;
  NAPI_CALL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code));
  NAPI_CALL(env, napi_create_string_utf8(env, line, NAPI_AUTO_LENGTH, &msg));
  NAPI_CALL(env, napi_create_error(env, code, msg, &error));
  NAPI_CALL(env, napi_create_int32(env, -err, &errno_value));
  NAPI_CALL(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  NAPI_CALL(env, napi_set_named_property(env, error, "errno", errno_value));
  NAPI_CALL(env, napi_set_named_property(env, error, "syscall", syscall_value));
  return error;
}

// Throws errno_error(syscall, err); returns NULL for `return throw_errno(...)`.
napi_value throw_errno(napi_env env, const char* syscall, int err) {
  napi_value error = errno_error(env, syscall, err, NULL);
  if (error) NAPI_CALL(env, napi_throw(env, error));
  return NULL;
}

// Throws a TypeError with a node-style code; returns NULL for `return throw_type(...)`.
napi_value throw_type(napi_env env, const char* code, const char* message) {
  NAPI_CALL(env, napi_throw_type_error(env, code, message));
  return NULL;
}

// Reads an int32 argument. napi_get_value_int32 alone truncates 3.5 to 3 and wraps 2^31, so the value is
// read as a double and must be an integer in int32 range (what Number.isInteger and the range say).
bool int_arg(napi_env env, napi_value value, const char* name, int32_t* out) {
  char message[96];
  napi_valuetype type;
  double d = 0;
  NAPI_CHECK(env, napi_typeof(env, value, &type), false);
  if (type == napi_number) NAPI_CHECK(env, napi_get_value_double(env, value, &d), false);
  if (type != napi_number || !isfinite(d) || trunc(d) != d || d < INT32_MIN || d > INT32_MAX) {
    snprintf(message, sizeof message, "%s must be an integer from -2^31 to 2^31-1", name);
    throw_type(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  *out = (int32_t)d;
  return true;
}

napi_value address_object(napi_env env, const struct sockaddr_storage* ss) {
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

bool address_text(napi_env env, napi_value value, const char* name, char text[ADDRESS_TEXT_MAX]) {
  char message[96];
  napi_valuetype type;
  size_t text_len = 0;
  NAPI_CHECK(env, napi_typeof(env, value, &type), false);
  if (type != napi_string) {
    snprintf(message, sizeof message, "%s must be a string", name);
    throw_type(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  NAPI_CHECK(env, napi_get_value_string_utf8(env, value, text, ADDRESS_TEXT_MAX, &text_len), false);
  // A longer string was cut to fit: refuse it rather than parse its first characters as an address.
  if (text_len >= ADDRESS_TEXT_MAX - 1) {
    throw_errno(env, "inet_pton", EINVAL);
    return false;
  }
  return true;
}

bool sockaddr_parse(napi_env env, const char* text, uint16_t port, struct sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* sin = (struct sockaddr_in*)ss;
  struct sockaddr_in6* sin6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
  } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof *sin6;
  } else {
    throw_errno(env, "inet_pton", EINVAL);
    return false;
  }
  return true;
}

const char* transparent_setup(int fd, int family, bool transparent, int mark) {
  int on = 1;
  if (transparent && (family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &on, sizeof on)
                                         : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &on, sizeof on))) {
    return family == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)" : "setsockopt(IP_TRANSPARENT)";
  }
  if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark)) return "setsockopt(SO_MARK)";
  return NULL;
}
