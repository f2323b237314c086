// The relay engine's own structures, shared by relay.c (thread, table, timers, close paths) and relay-pump.c
// (moving bytes). Everything here is touched by the relay thread only, except what relay.c guards with its
// mutex (the table links and the upstream fd while the entry is in the table) and the counters read atomically.
#ifndef SIDECAR_RELAY_INTERNAL_H
#define SIDECAR_RELAY_INTERNAL_H
#include "relay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { DOWN = 0, UP = 1 };

// Bytes a direction reads at once before it moves to splice (relay-pump.c); README: "first reads".
#define RELAY_SCRATCH 16384
enum conn_state { CONNECTING, RELAYING, CLOSED };

typedef struct relay_pipe {
  int r, w;
  size_t cap;  // bytes the pipe was sized to (F_GETPIPE_SZ)
  struct relay_pipe* next;  // in the pool
} relay_pipe;

struct conn;

// One socket of a connection; epoll's data.ptr points here.
typedef struct side {
  struct conn* conn;
  int fd;
  int index;  // DOWN or UP
  // Epoll reported something to read since the last read that emptied the socket. Edge-triggered, bytes that
  // arrive after a round's epoll_wait bring an event of their own, so a side without one is not read: no
  // read (or splice) that only returns EAGAIN.
  bool ready;
  // Epoll reported an end (RDHUP, HUP, ERR): a short read no longer means the socket is empty, since the FIN
  // or error behind the bytes brings no new event. Read until EAGAIN or the end.
  bool ending;
} side;

// One direction: bytes read from side i wait here until they are written to side 1 - i.
typedef struct dir {
  relay_pipe* pipe;  // held only while bytes are in it
  size_t in_pipe;
  char* buf;  // the read/write fallback's buffer, held only while bytes are in it
  size_t buf_len, buf_off;
  bool rw;      // the bytes go through buf (read/write) until it is empty
  bool no_splice;  // splice refused this socket (EINVAL): read/write from now on
  bool bulk;    // a read filled the scratch buffer: splice (through a pipe) from now on
  bool eof;     // the source sent its FIN
  bool shut;    // the FIN was passed on (shutdown(SHUT_WR) on the destination)
  bool paused;  // reading stopped at the buffer limit
} dir;

typedef struct dlink {
  struct conn *prev, *next;
} dlink;

typedef struct conn {
  relay_engine* e;
  int64_t id;
  enum conn_state state;
  bool registered;  // its sockets are in the epoll set
  int connect_err;  // connect(2) failed at once: reported as the connect's failure when the thread adds it
  side s[2];
  dir d[2];            // d[i]: from s[i] to s[1 - i]
  uint64_t rx[2], tx[2];  // bytes read from / written to s[i]
  int32_t paused, resumed;  // since the last flow event
  bool flow_dirty;
  int64_t connect_deadline, idle_deadline;
  dlink connect_link, idle_link;  // deadline lists (relay.c), ordered since every timeout is the same
  struct conn* table_next;  // hash chain (under the mutex)
  struct conn* dirty_next;  // flow events to send this round
  struct conn* dead_next;   // freed at the end of the round (epoll may still hold events for it)
} conn;

// relay-pump.c's pipe pool, one per engine.
typedef struct relay_pipes {
  relay_pipe* pool;
  size_t pooled, in_use, wanted_size, max;  // pooled and in_use are read by the JS thread (relay_engine_stats)
  int64_t last_use;  // when a pipe was last taken or given back
} relay_pipes;

typedef struct command {
  enum { CMD_ADD, CMD_ABORT } kind;
  enum relay_abort_how how;
  int64_t id;
  conn* c;
  struct command* next;
} command;

struct relay_engine {
  bool running;
  // Set by relay_engine_stop, then the eventfd written: a stop needs no allocation, so it cannot fail to
  // reach the thread and leave pthread_join waiting forever.
  bool stopping;
  // Set (under mu) as the thread ends: add and abort are refused from then on, whatever ended it.
  bool ended;
  enum relay_down down;  // why the thread went down, written before `ended`
  int down_err;
  relay_options opts;
  relay_emit_fn emit;
  relay_exit_fn on_exit;
  void* ctx;
  pthread_t thread;
  int epfd, wakefd;
  pthread_mutex_t mu;  // guards the table, the command queue and `ended`
  conn** buckets;
  size_t nbuckets, count;
  command *cmd_head, *cmd_tail;
  // relay thread only
  dlink connect_list, idle_list;  // head.next = oldest deadline
  conn *dirty, *dead;
  relay_event* events;
  size_t nevents, cap_events;
  int64_t now;
  relay_pipes pipes;
  // A direction's reads go through here (recv, then send at once) until one fills it: a short exchange costs
  // two calls a message, where splice costs a read, a write and a read that returns EAGAIN.
  char scratch[RELAY_SCRATCH];
};

// relay-pump.c
// Moves what can move both ways without blocking; returns false when the connection was closed (an error on
// one side, or both FINs passed on).
bool relay_pump(conn* c);
void relay_pipes_init(relay_pipes* p, size_t buffer_limit, size_t max_pipes);
void relay_pipes_free(relay_pipes* p);
void relay_dir_release(relay_engine* e, dir* d);
int64_t relay_pipes_trim_at(const relay_pipes* p);
void relay_pipes_trim(relay_pipes* p, int64_t now);
size_t relay_pipes_in_use(relay_pipes* p);
size_t relay_pipes_pooled(relay_pipes* p);

// relay.c, for relay-pump.c
void relay_touch(conn* c);
void relay_flow(conn* c, bool paused);
// Side `failed` hit err (read/write error, or an RST pending behind a FIN): reset the other side, close both.
// ENOMEM (a buffer not to be had, ours or the kernel's) cuts the stream short on both sides: both are reset.
void relay_fail_side(conn* c, int failed, int err);
// Both FINs passed on: close both sides, termination ''.
void relay_close_clean(conn* c);

#endif
