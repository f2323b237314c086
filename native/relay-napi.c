// The relay engine's JavaScript face (relayStart, relayAdd, relayAbort, relayTcpInfo, relayStop,
// relayStats; typed in src/native/relay.ts). Events come from the relay thread in one batch per epoll round
// through a thread-safe function (unreferenced: it does not keep the process alive) and reach the callback
// as an array of plain objects.
#include "napi-util.h"
#include "faults.h"
#include "relay.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
  relay_event* events;
  size_t count;
} batch;

static napi_threadsafe_function tsfn;
static bool hook_added;

static const char* type_names[] = {"", "connected", "failed", "idle", "closed", "flow"};

static bool set_number(napi_env env, napi_value obj, const char* key, double value) {
  napi_value v;
  NAPI_CHECK(env, napi_create_double(env, value, &v), false);
  NAPI_CHECK(env, napi_set_named_property(env, obj, key, v), false);
  return true;
}

static napi_value event_object(napi_env env, const relay_event* e) {
  napi_value obj, v;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_create_string_utf8(env, type_names[e->type], NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "type", v));
  if (!set_number(env, obj, "id", (double)e->id)) return NULL;
  if (e->type == RELAY_FAILED) {
    if (!set_number(env, obj, "errno", e->err)) return NULL;
    NAPI_CALL(env, napi_get_boolean(env, e->timeout, &v));
    NAPI_CALL(env, napi_set_named_property(env, obj, "timeout", v));
  } else if (e->type == RELAY_FLOW) {
    if (!set_number(env, obj, "paused", e->paused) || !set_number(env, obj, "resumed", e->resumed)) return NULL;
  } else if (e->type == RELAY_CLOSED) {
    static const char* keys[] = {"downstreamRx", "downstreamTx", "upstreamRx", "upstreamTx"};
    for (int i = 0; i < 4; i++) {
      if (!set_number(env, obj, keys[i], (double)e->bytes[i])) return NULL;
    }
    static const char* closes[] = {"clean", "idle", "loop", "drain", "error"};
    NAPI_CALL(env, napi_create_string_utf8(env, closes[e->close], NAPI_AUTO_LENGTH, &v));
    NAPI_CALL(env, napi_set_named_property(env, obj, "close", v));
    if (e->close == RELAY_CLOSE_ERROR) {
      NAPI_CALL(env, napi_create_string_utf8(env, e->side == 0 ? "downstream" : "upstream", NAPI_AUTO_LENGTH, &v));
      NAPI_CALL(env, napi_set_named_property(env, obj, "side", v));
      if (!set_number(env, obj, "errno", e->err)) return NULL;
    }
  }
  return obj;
}

// On the JS thread. env is NULL while the function is torn down: then the batch is only freed.
static void call_js(napi_env env, napi_value callback, void* context, void* data) {
  (void)context;
  batch* b = data;
  if (env && callback) {
    napi_value array, undefined;
    bool ok = napi_create_array_with_length(env, b->count, &array) == napi_ok && napi_get_undefined(env, &undefined) == napi_ok;
    for (size_t i = 0; ok && i < b->count; i++) {
      napi_value obj = event_object(env, &b->events[i]);
      ok = obj && napi_set_element(env, array, (uint32_t)i, obj) == napi_ok;
    }
    // An exception thrown by the callback is node's uncaught exception, as for any callback.
    if (ok) napi_call_function(env, undefined, callback, 1, &array, NULL);
  }
  free(b->events);
  free(b);
}

// On the relay thread: hands the round's events over without blocking (the queue is unbounded).
static void emit(relay_event* events, size_t count, void* ctx) {
  (void)ctx;
  batch* b = malloc(sizeof *b);
  if (!b) {
    free(events);
    return;
  }
  b->events = events;
  b->count = count;
  if (FAULT(FAULT_TSFN_CALL) || napi_call_threadsafe_function(tsfn, b, napi_tsfn_nonblocking) != napi_ok) {
    free(events);
    free(b);
  }
}

static void stop(void) {
  if (!relay_engine_running()) return;
  relay_engine_stop();
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  tsfn = NULL;
}

static void cleanup_hook(void* arg) {
  (void)arg;
  stop();
}

static bool get_property(napi_env env, napi_value obj, const char* key, napi_value* out, napi_valuetype* type) {
  NAPI_CHECK(env, napi_get_named_property(env, obj, key, out), false);
  NAPI_CHECK(env, napi_typeof(env, *out, type), false);
  return true;
}

static bool number_property(napi_env env, napi_value obj, const char* key, double min, double max, double* out) {
  napi_value v;
  napi_valuetype type;
  char message[96];
  if (!get_property(env, obj, key, &v, &type)) return false;
  if (type == napi_number) NAPI_CHECK(env, napi_get_value_double(env, v, out), false);
  if (type != napi_number || !(*out >= min && *out <= max) || *out != (double)(int64_t)*out) {
    snprintf(message, sizeof message, "%s must be an integer from %.0f to %.0f", key, min, max);
    throw_type(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return true;
}

// relayStart(onEvents, { bufferLimitBytes, connectTimeoutMs, idleTimeoutMs, maxPipes? }); no maxPipes: no limit
static napi_value relay_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined;
  if (argc == 2) {
    NAPI_CALL(env, napi_typeof(env, argv[0], &t0));
    NAPI_CALL(env, napi_typeof(env, argv[1], &t1));
  }
  if (t0 != napi_function || t1 != napi_object) return throw_type(env, "ERR_INVALID_ARG_TYPE", "relayStart(onEvents, options)");
  double limit, connect_ms, idle_ms, max_pipes = -1;
  napi_value v;
  napi_valuetype type;
  if (!number_property(env, argv[1], "bufferLimitBytes", 1, 1 << 30, &limit) ||
      !number_property(env, argv[1], "connectTimeoutMs", 1, 1e12, &connect_ms) ||
      !number_property(env, argv[1], "idleTimeoutMs", 0, 1e12, &idle_ms) || !get_property(env, argv[1], "maxPipes", &v, &type) ||
      (type != napi_undefined && !number_property(env, argv[1], "maxPipes", 0, 1 << 30, &max_pipes))) {
    return NULL;
  }
  if (relay_engine_running()) return throw_errno(env, "relayStart", EALREADY);
  NAPI_CALL(env, napi_create_string_utf8(env, "sidecar-relay", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &tsfn));
  NAPI_CALL(env, napi_unref_threadsafe_function(env, tsfn));
  relay_options opts = {(size_t)limit, (int64_t)connect_ms, (int64_t)idle_ms, max_pipes < 0 ? SIZE_MAX : (size_t)max_pipes};
  int err = relay_engine_start(&opts, emit, NULL);
  if (err) {
    napi_release_threadsafe_function(tsfn, napi_tsfn_release);
    tsfn = NULL;
    return throw_errno(env, "relayStart", err);
  }
  if (!hook_added) {
    NAPI_CALL(env, napi_add_env_cleanup_hook(env, cleanup_hook, NULL));
    hook_added = true;
  }
  return NULL;
}

static bool id_arg(napi_env env, napi_value v, int64_t* out) {
  napi_valuetype type;
  double d = 0;
  NAPI_CHECK(env, napi_typeof(env, v, &type), false);
  if (type == napi_number) NAPI_CHECK(env, napi_get_value_double(env, v, &d), false);
  if (type != napi_number || !(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) {
    throw_type(env, "ERR_INVALID_ARG_TYPE", "id must be a non-negative integer");
    return false;
  }
  *out = (int64_t)d;
  return true;
}

// Reads { address, port } into ss; a missing port is 0.
static bool sockaddr_arg(napi_env env, napi_value obj, struct sockaddr_storage* ss, socklen_t* len, const char* what) {
  napi_value v;
  napi_valuetype type;
  char text[ADDRESS_TEXT_MAX], name[32];
  double port = 0;
  snprintf(name, sizeof name, "%s.address", what);
  if (!get_property(env, obj, "address", &v, &type) || !address_text(env, v, name, text)) return false;
  if (!get_property(env, obj, "port", &v, &type)) return false;
  if (type != napi_undefined && !number_property(env, obj, "port", 0, 65535, &port)) return false;
  return sockaddr_parse(env, text, (uint16_t)port, ss, len);
}

// relayAdd(id, downstreamFd, dst: { address, port }, bind: { address?, transparent?, mark? }) -> local address
static napi_value relay_add(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], v;
  napi_valuetype type;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "ERR_INVALID_ARG_COUNT", "relayAdd(id, downstreamFd, dst, bind)");
  int64_t id;
  int32_t fd;
  struct sockaddr_storage dst, src, local;
  socklen_t dst_len = 0, src_len = 0;
  if (!id_arg(env, argv[0], &id) || !int_arg(env, argv[1], "downstreamFd", &fd)) return NULL;
  if (!sockaddr_arg(env, argv[2], &dst, &dst_len, "dst")) return NULL;
  relay_bind b = {NULL, 0, false, 0};
  if (!get_property(env, argv[3], "address", &v, &type)) return NULL;
  if (type != napi_undefined) {
    if (!sockaddr_arg(env, argv[3], &src, &src_len, "bind")) return NULL;
    b.addr = (struct sockaddr*)&src;
    b.len = src_len;
  }
  if (!get_property(env, argv[3], "transparent", &v, &type)) return NULL;
  if (type == napi_boolean) NAPI_CALL(env, napi_get_value_bool(env, v, &b.transparent));
  if (!get_property(env, argv[3], "mark", &v, &type)) return NULL;
  if (type != napi_undefined && !int_arg(env, v, "mark", &b.mark)) return NULL;
  const char* syscall = NULL;
  int err = relay_engine_add(id, fd, (struct sockaddr*)&dst, dst_len, &b, &local, &syscall);
  if (err) return throw_errno(env, syscall ? syscall : "relayAdd", err);
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) local.ss_family = dst.ss_family;
  return address_object(env, &local);
}

// relayAbort(id, 'reset' | 'looped')
static napi_value relay_abort(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t id;
  char how[16] = "";
  size_t how_len = 0;
  if (argc < 2 || !id_arg(env, argv[0], &id)) return argc < 2 ? throw_type(env, "ERR_INVALID_ARG_COUNT", "relayAbort(id, how)") : NULL;
  if (napi_get_value_string_utf8(env, argv[1], how, sizeof how, &how_len) != napi_ok ||
      (strcmp(how, "reset") != 0 && strcmp(how, "looped") != 0)) {
    return throw_type(env, "ERR_INVALID_ARG_VALUE", "how must be 'reset' or 'looped'");
  }
  int err = relay_engine_abort(id, strcmp(how, "looped") == 0 ? RELAY_ABORT_LOOPED : RELAY_ABORT_RESET);
  if (err) return throw_errno(env, "relayAbort", err);
  return NULL;
}

// relayTcpInfo(id) -> { state, lastAckRecvMs } of the upstream socket (as sockopt's tcpInfo), undefined when gone
static napi_value relay_tcp_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t id;
  if (argc < 1) return throw_type(env, "ERR_INVALID_ARG_COUNT", "relayTcpInfo(id)");
  if (!id_arg(env, argv[0], &id)) return NULL;
  uint32_t state = 0, last_ack = 0;
  if (!relay_engine_tcp_info(id, &state, &last_ack)) {
    NAPI_CALL(env, napi_get_undefined(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  if (!set_number(env, result, "state", state) || !set_number(env, result, "lastAckRecvMs", last_ack)) return NULL;
  return result;
}

static napi_value relay_stop(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  stop();
  return NULL;
}

static napi_value relay_stats(napi_env env, napi_callback_info info) {
  (void)info;
  size_t conns = 0, in_use = 0, pooled = 0, max = 0;
  relay_engine_stats(&conns, &in_use, &pooled, &max);
  napi_value obj;
  NAPI_CALL(env, napi_create_object(env, &obj));
  if (!set_number(env, obj, "connections", (double)conns) || !set_number(env, obj, "pipesInUse", (double)in_use) ||
      !set_number(env, obj, "pipesPooled", (double)pooled) ||
      !set_number(env, obj, "pipesMax", max == SIZE_MAX ? (double)INFINITY : (double)max)) {
    return NULL;
  }
  return obj;
}

bool relay_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relayStart", NULL, relay_start, NULL, NULL, NULL, napi_default, NULL},
      {"relayAdd", NULL, relay_add, NULL, NULL, NULL, napi_default, NULL},
      {"relayAbort", NULL, relay_abort, NULL, NULL, NULL, napi_default, NULL},
      {"relayTcpInfo", NULL, relay_tcp_info, NULL, NULL, NULL, napi_default, NULL},
      {"relayStop", NULL, relay_stop, NULL, NULL, NULL, napi_default, NULL},
      {"relayStats", NULL, relay_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  NAPI_CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props), false);
  // Which build this is, for the fault tests: they run only where native/faults.h's switch exists.
  napi_value faults;
  NAPI_CHECK(env, napi_get_boolean(env, FAULTS_BUILD, &faults), false);
  NAPI_CHECK(env, napi_set_named_property(env, exports, "relayFaultInjection", faults), false);
  return true;
}
