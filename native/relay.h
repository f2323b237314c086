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

// Called on the relay thread once per epoll round with that round's events; takes ownership of `events`
// (malloc'd) and must not block.
typedef void (*relay_emit_fn)(relay_event* events, size_t count, void* ctx);

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
int relay_engine_start(const relay_options* opts, relay_emit_fn emit, void* ctx);
void relay_engine_stop(void);
bool relay_engine_running(void);
// Takes a dup of downstream_fd, connects a new upstream socket to dst; on success *local is its local address.
// On failure *syscall names the call that failed and nothing is kept.
int relay_engine_add(int64_t id, int downstream_fd, const struct sockaddr* dst, socklen_t dst_len, const relay_bind* bind,
                     struct sockaddr_storage* local, const char** syscall);
int relay_engine_abort(int64_t id, enum relay_abort_how how);
// TCP_INFO of the upstream socket (the loop guard's probe): false when the connection is gone.
bool relay_engine_tcp_info(int64_t id, uint32_t* state, uint32_t* last_ack_recv_ms);
void relay_engine_stats(size_t* connections, size_t* pipes_in_use, size_t* pipes_pooled, size_t* pipes_max);

#endif
