// The relay engine's JavaScript face (relayStart, relayAdd, relayAbort, relayTcpInfo, relayStop,
// relayStats; typed in src/native/relay.ts). Events come from the relay thread in one batch per epoll round
// through a thread-safe function (unreferenced: it does not keep the process alive) and reach the callback
// as an array of plain objects. The engine and its thread-safe function are the env's (Node-API instance
// data), so every env (a worker thread's too) has its own.
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

// One relayStart's thread-safe function. The relay thread holds it (its one thread count) and releases it as
// its last act; the release needs no allocation, so the finalizer that follows on the JS thread is the way a
// down engine's notice gets there whatever failed, after every batch sent before it.
typedef struct run {
  napi_threadsafe_function tsfn;
  napi_ref on_down;  // NULL: no onDown
  relay_engine* engine;
  enum relay_down down;  // written by the relay thread before its release
  int err;
} run;

typedef struct instance {
  relay_engine* engine;
  bool hook_added;
  bool closing;  // the env is being torn down: no JavaScript is called
} instance;

static instance* get_instance(napi_env env) {
  void* data = NULL;
  NAPI_CHECK(env, napi_get_instance_data(env, &data), NULL);
  return data;
}

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

// On the relay thread: hands the round's events over without blocking (the queue is unbounded). A batch that
// cannot be handed over takes the engine down (relay.c): its events are lost.
static enum relay_down emit(relay_event* events, size_t count, void* ctx) {
  run* r = ctx;
  batch* b = malloc(sizeof *b);
  if (!b) {
    free(events);
    return RELAY_DOWN_EVENT_ALLOC;
  }
  b->events = events;
  b->count = count;
  if (FAULT(FAULT_TSFN_CALL) || napi_call_threadsafe_function(r->tsfn, b, napi_tsfn_nonblocking) != napi_ok) {
    free(events);
    free(b);
    return RELAY_DOWN_TSFN_CALL;
  }
  return RELAY_UP;
}

// The relay thread's last act; r may be freed by the JS thread as soon as it is released.
static void relay_exited(void* ctx) {
  run* r = ctx;
  r->down = relay_engine_down(r->engine, &r->err);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
}

static const char* down_names[] = {"", "event_alloc", "tsfn_call", "epoll_wait"};

// onDown({ reason, errno }), on the JS thread once the relay thread let go of the function.
static void notify_down(napi_env env, run* r) {
  napi_value fn, obj, v, undefined;
  if (napi_get_reference_value(env, r->on_down, &fn) != napi_ok || !fn || napi_create_object(env, &obj) != napi_ok ||
      napi_create_string_utf8(env, down_names[r->down], NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, obj, "reason", v) != napi_ok || !set_number(env, obj, "errno", r->err) ||
      napi_get_undefined(env, &undefined) != napi_ok) {
    return;
  }
  // An exception thrown by the callback is node's uncaught exception, as for the events.
  napi_call_function(env, undefined, fn, 1, &obj, NULL);
}

static void finalize_run(napi_env env, void* data, void* hint) {
  run* r = data;
  instance* inst = hint;
  if (r->down && r->on_down && !inst->closing) notify_down(env, r);
  if (r->on_down) napi_delete_reference(env, r->on_down);
  free(r);
}

static void stop(instance* inst) {
  // The relay thread releases the function as it ends; its finalizer frees the run.
  if (relay_engine_running(inst->engine)) relay_engine_stop(inst->engine);
}

static void cleanup_hook(void* arg) {
  instance* inst = arg;
  inst->closing = true;
  stop(inst);
}

static void finalize_instance(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  instance* inst = data;
  relay_engine_free(inst->engine);
  free(inst);
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

// relayStart(onEvents, { bufferLimitBytes, connectTimeoutMs, idleTimeoutMs, maxPipes? }, onDown?); no maxPipes: no
// limit. onDown({ reason, errno }) comes once, after the last events, should the engine go down.
static napi_value relay_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], name;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined, t2 = napi_undefined;
  if (argc >= 2) {
    NAPI_CALL(env, napi_typeof(env, argv[0], &t0));
    NAPI_CALL(env, napi_typeof(env, argv[1], &t1));
  }
  if (argc >= 3) NAPI_CALL(env, napi_typeof(env, argv[2], &t2));
  if (t0 != napi_function || t1 != napi_object || (t2 != napi_undefined && t2 != napi_function)) {
    return throw_type(env, "ERR_INVALID_ARG_TYPE", "relayStart(onEvents, options, onDown?)");
  }
  double limit, connect_ms, idle_ms, max_pipes = -1;
  napi_value v;
  napi_valuetype type;
  if (!number_property(env, argv[1], "bufferLimitBytes", 1, 1 << 30, &limit) ||
      !number_property(env, argv[1], "connectTimeoutMs", 1, 1e12, &connect_ms) ||
      !number_property(env, argv[1], "idleTimeoutMs", 0, 1e12, &idle_ms) || !get_property(env, argv[1], "maxPipes", &v, &type) ||
      (type != napi_undefined && !number_property(env, argv[1], "maxPipes", 0, 1 << 30, &max_pipes))) {
    return NULL;
  }
  instance* inst = get_instance(env);
  if (!inst) return NULL;
  if (relay_engine_running(inst->engine)) return throw_errno(env, "relayStart", EALREADY);
  if (!inst->hook_added) {
    NAPI_CALL(env, napi_add_env_cleanup_hook(env, cleanup_hook, inst));
    inst->hook_added = true;
  }
  run* r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "relayStart", ENOMEM);
  r->engine = inst->engine;
  if (t2 == napi_function && napi_create_reference(env, argv[2], 1, &r->on_down) != napi_ok) {
    free(r);
    return throw_errno(env, "relayStart", ENOMEM);
  }
  // From here the finalizer owns r, also when the function cannot be made.
  if (napi_create_string_utf8(env, "sidecar-relay", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, r, finalize_run, inst, call_js, &r->tsfn) != napi_ok) {
    finalize_run(env, r, inst);
    return throw_errno(env, "relayStart", ENOMEM);
  }
  NAPI_CALL(env, napi_unref_threadsafe_function(env, r->tsfn));
  relay_options opts = {(size_t)limit, (int64_t)connect_ms, (int64_t)idle_ms, max_pipes < 0 ? SIZE_MAX : (size_t)max_pipes};
  int err = relay_engine_start(inst->engine, &opts, emit, relay_exited, r);
  if (err) {
    // No thread to hold it: let go of it here (r->down stays RELAY_UP, so no notice).
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    return throw_errno(env, "relayStart", err);
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

// relayAdd(id, downstreamFd, dst: { address, port }, bind: { address?, transparent?, mark?, netns? }, opts?: { owned? })
// -> local address
static napi_value relay_add(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], v;
  napi_valuetype type;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "ERR_INVALID_ARG_COUNT", "relayAdd(id, downstreamFd, dst, bind)");
  int64_t id;
  int32_t fd;
  struct sockaddr_storage dst, src, local;
  socklen_t dst_len = 0, src_len = 0;
  double netns = -1;
  if (!id_arg(env, argv[0], &id) || !int_arg(env, argv[1], "downstreamFd", &fd)) return NULL;
  if (!sockaddr_arg(env, argv[2], &dst, &dst_len, "dst")) return NULL;
  relay_bind b = {NULL, 0, false, 0, -1};
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
  if (!get_property(env, argv[3], "netns", &v, &type)) return NULL;
  if (type != napi_undefined && !number_property(env, argv[3], "netns", -1, INT32_MAX, &netns)) return NULL;
  b.netns = (int)netns;
  // opts.owned: the fd is the relay's on success (the acceptor's, no node:net socket holds it), no dup
  bool owned = false;
  if (argc >= 5) {
    NAPI_CALL(env, napi_typeof(env, argv[4], &type));
    if (type == napi_object) {
      if (!get_property(env, argv[4], "owned", &v, &type)) return NULL;
      if (type == napi_boolean) NAPI_CALL(env, napi_get_value_bool(env, v, &owned));
    }
  }
  const char* syscall = NULL;
  instance* inst = get_instance(env);
  if (!inst) return NULL;
  int err = relay_engine_add(inst->engine, id, fd, owned, (struct sockaddr*)&dst, dst_len, &b, &local, &syscall);
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
  instance* inst = get_instance(env);
  if (!inst) return NULL;
  int err = relay_engine_abort(inst->engine, id, strcmp(how, "looped") == 0 ? RELAY_ABORT_LOOPED : RELAY_ABORT_RESET);
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
  instance* inst = get_instance(env);
  if (!inst) return NULL;
  if (!relay_engine_tcp_info(inst->engine, id, &state, &last_ack)) {
    NAPI_CALL(env, napi_get_undefined(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  if (!set_number(env, result, "state", state) || !set_number(env, result, "lastAckRecvMs", last_ack)) return NULL;
  return result;
}

static napi_value relay_stop(napi_env env, napi_callback_info info) {
  (void)info;
  instance* inst = get_instance(env);
  if (inst) stop(inst);
  return NULL;
}

static napi_value relay_stats(napi_env env, napi_callback_info info) {
  (void)info;
  size_t conns = 0, in_use = 0, pooled = 0, max = 0;
  instance* inst = get_instance(env);
  if (!inst) return NULL;
  relay_engine_stats(inst->engine, &conns, &in_use, &pooled, &max);
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
  instance* inst = calloc(1, sizeof *inst);
  if (inst) inst->engine = relay_engine_new();
  if (!inst || !inst->engine) {
    free(inst);
    throw_errno(env, "relay", ENOMEM);
    return false;
  }
  napi_status status = napi_set_instance_data(env, inst, finalize_instance, NULL);
  if (status != napi_ok) {
    relay_engine_free(inst->engine);
    free(inst);
    NAPI_CHECK(env, status, false);
  }
  // Which build this is, for the fault tests: they run only where native/faults.h's switch exists.
  napi_value faults;
  NAPI_CHECK(env, napi_get_boolean(env, FAULTS_BUILD, &faults), false);
  NAPI_CHECK(env, napi_set_named_property(env, exports, "relayFaultInjection", faults), false);
  return true;
}
