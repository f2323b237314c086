// The native relay engine (relay.c), without Node-API: relay-napi.c is its only caller and turns the events
// it emits into JavaScript objects on the JS thread.
#ifndef SIDECAR_RELAY_H
#define SIDECAR_RELAY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum relay_event_type { RELAY_CONNECTED = 1, RELAY_FAILED, RELAY_IDLE, RELAY_CLOSED, RELAY_FLOW };
enum relay_abort_how { RELAY_ABORT_RESET = 1, RELAY_ABORT_LOOPED };
// How a connection closed. The engine reports the kind only: src/proxy/engines/ledger.ts names it, for both engines.
enum relay_close {
  RELAY_CLOSE_CLEAN = 0,  // both FINs passed on, or a plain close after a failed connect
  RELAY_CLOSE_IDLE,       // the idle timeout
  RELAY_CLOSE_LOOP,       // relay_engine_abort(RELAY_ABORT_LOOPED)
  RELAY_CLOSE_DRAIN,      // relay_engine_abort(RELAY_ABORT_RESET)
  RELAY_CLOSE_ERROR,      // a side's read or write failed (or it was reset): err, side
};

typedef struct relay_event {
  uint8_t type;
  bool timeout;        // RELAY_FAILED: the connect timeout fired
  uint8_t close;       // RELAY_CLOSED: enum relay_close
  uint8_t side;        // RELAY_CLOSE_ERROR: the side that failed (0 downstream, 1 upstream)
  int32_t err;         // RELAY_FAILED, RELAY_CLOSE_ERROR: positive errno
  int32_t paused;      // RELAY_FLOW: reads stopped at the buffer limit since the last flow event
  int32_t resumed;     // RELAY_FLOW: reads started again
  int64_t id;
  uint64_t bytes[4];   // RELAY_CLOSED: downstream rx, downstream tx, upstream rx, upstream tx
} relay_event;

// Why the engine went down: its thread met what it cannot go on from, reset every connection and ended.
enum relay_down { RELAY_UP = 0, RELAY_DOWN_EVENT_ALLOC, RELAY_DOWN_TSFN_CALL, RELAY_DOWN_EPOLL_WAIT };

// Called on the relay thread once per epoll round with that round's events; takes ownership of `events`
// (malloc'd) and must not block. Anything but RELAY_UP: the events could not be handed over, and the engine
// goes down for that reason.
typedef enum relay_down (*relay_emit_fn)(relay_event* events, size_t count, void* ctx);
// The relay thread's last call, whether stopped or down (relay_engine_down says which); nothing of the engine
// is touched after it.
typedef void (*relay_exit_fn)(void* ctx);

// One engine (Node-API instance data: one per env); its thread is started and stopped any number of times.
typedef struct relay_engine relay_engine;

typedef struct relay_options {
  size_t buffer_limit;
  int64_t connect_timeout_ms;
  int64_t idle_timeout_ms;  // 0: no idle timeout
  size_t max_pipes;  // pipes held at once, pooled ones included; beyond them a direction uses read/write
} relay_options;

typedef struct relay_bind {
  const struct sockaddr* addr;  // NULL: the kernel chooses the source
  socklen_t len;
  bool transparent;
  int mark;
  int netns;  // the upstream socket's network namespace (an fd of /proc/PID/ns/net), -1: the engine's own
} relay_bind;

// All return 0 or a positive errno. Start/stop/add/abort are called from one (the JS) thread.
relay_engine* relay_engine_new(void);  // NULL: out of memory
void relay_engine_free(relay_engine* e);  // stopped first
int relay_engine_start(relay_engine* e, const relay_options* opts, relay_emit_fn emit, relay_exit_fn on_exit, void* ctx);
void relay_engine_stop(relay_engine* e);
bool relay_engine_running(relay_engine* e);
// Why the thread went down (RELAY_UP: it did not), and the errno that came with it (0: none).
enum relay_down relay_engine_down(relay_engine* e, int* err);
// Takes a dup of downstream_fd (owned: downstream_fd itself), connects a new upstream socket to dst; on success
// *local is its local address. On failure *syscall names the call that failed and nothing is kept (an owned
// downstream_fd is left open, the caller's to close).
int relay_engine_add(relay_engine* e, int64_t id, int downstream_fd, bool owned, const struct sockaddr* dst, socklen_t dst_len,
                     const relay_bind* bind, struct sockaddr_storage* local, const char** syscall);
int relay_engine_abort(relay_engine* e, int64_t id, enum relay_abort_how how);
// TCP_INFO of the upstream socket (the loop guard's probe): false when the connection is gone.
bool relay_engine_tcp_info(relay_engine* e, int64_t id, uint32_t* state, uint32_t* last_ack_recv_ms);
void relay_engine_stats(relay_engine* e, size_t* connections, size_t* pipes_in_use, size_t* pipes_pooled, size_t* pipes_max);

#endif
