// The native relay engine: one thread of its own with epoll relays the connections JavaScript hands it
// (relay_engine_add), with the node engine's semantics (src/proxy/engines/node.ts, src/proxy/engines/node-relay.ts): FIN
// passed on as FIN, an RST or a failed write resets the other side, connect and idle timeouts, and one
// closed event with byte counts and how it closed (a kind, side and errno: src/proxy/engines/ledger.ts names it). The JS thread and the relay thread share the connection
// table (under `mu`); everything else the JS thread asks for goes through a command queue and an eventfd.
// What the thread cannot go on from (an event not to be had, a batch JS cannot be handed, epoll_wait failing)
// takes the engine down (go_down): every connection reset, the thread ended, one notice (relay_exit_fn).
#define _GNU_SOURCE
#include "relay-internal.h"
#include "faults.h"
#include "transparent.h"
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>


static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---- deadline lists: every connect timeout (idle timeout) is the same length, so appending keeps them sorted

static dlink* link_of(conn* c, dlink* list) { return list == &c->e->connect_list ? &c->connect_link : &c->idle_link; }

static void list_remove(dlink* list, conn* c) {
  dlink* l = link_of(c, list);
  if (!l->prev && !l->next && list->next != c) return;  // not on the list
  dlink* before = l->prev ? link_of(l->prev, list) : list;
  dlink* after = l->next ? link_of(l->next, list) : list;
  before->next = l->next;
  after->prev = l->prev;
  l->prev = l->next = NULL;
}

static void list_append(dlink* list, conn* c) {
  dlink* l = link_of(c, list);
  l->next = NULL;
  l->prev = list->prev;  // list->prev is the tail
  if (list->prev) link_of(list->prev, list)->next = c;
  else list->next = c;
  list->prev = c;
}

void relay_touch(conn* c) {
  relay_engine* R = c->e;
  if (R->opts.idle_timeout_ms <= 0 || c->state == CLOSED) return;
  c->idle_deadline = R->now + R->opts.idle_timeout_ms;
  if (R->idle_list.prev == c) return;
  list_remove(&R->idle_list, c);
  list_append(&R->idle_list, c);
}

// ---- the table (JS thread: insert, lookups; relay thread: removal), under R->mu

static bool table_insert(relay_engine* R, conn* c) {
  if (R->count >= R->nbuckets) {
    size_t n = R->nbuckets ? R->nbuckets * 2 : 1024;
    conn** b = calloc(n, sizeof *b);
    if (b) {
      for (size_t i = 0; i < R->nbuckets; i++) {
        for (conn *e = R->buckets[i], *next; e; e = next) {
          next = e->table_next;
          e->table_next = b[(uint64_t)e->id & (n - 1)];
          b[(uint64_t)e->id & (n - 1)] = e;
        }
      }
      free(R->buckets);
      R->buckets = b;
      R->nbuckets = n;
    }
  }
  if (!R->nbuckets) return false;
  conn** head = &R->buckets[(uint64_t)c->id & (R->nbuckets - 1)];
  c->table_next = *head;
  *head = c;
  R->count++;
  return true;
}

static conn* table_find(relay_engine* R, int64_t id) {
  if (!R->nbuckets) return NULL;
  for (conn* e = R->buckets[(uint64_t)id & (R->nbuckets - 1)]; e; e = e->table_next) {
    if (e->id == id) return e;
  }
  return NULL;
}

static void table_remove(relay_engine* R, conn* c) {
  for (conn** p = &R->buckets[(uint64_t)c->id & (R->nbuckets - 1)]; *p; p = &(*p)->table_next) {
    if (*p == c) {
      *p = c->table_next;
      R->count--;
      return;
    }
  }
}

// ---- events, sent once per epoll round

// The thread cannot go on: a lost event would leave its connection open in JavaScript (its descriptors in the
// budget, its listener never idle) for good. It ends at the end of this round, resetting everything it holds,
// and says why once (relay_exit_fn), by a path that needs no allocation.
static void go_down(relay_engine* R, enum relay_down why, int err) {
  if (R->down) return;
  R->down = why;
  R->down_err = err;
}

static relay_event* event_new(conn* c, uint8_t type) {
  relay_engine* R = c->e;
  if (R->down) return NULL;  // nothing more is sent: the down notice stands for every connection
  if (R->nevents == R->cap_events) {
    size_t n = R->cap_events ? R->cap_events * 2 : 64;
    relay_event* e = FAULT(FAULT_EVENT_ALLOC) ? NULL : realloc(R->events, n * sizeof *e);
    if (!e) {
      go_down(R, RELAY_DOWN_EVENT_ALLOC, ENOMEM);
      return NULL;
    }
    R->events = e;
    R->cap_events = n;
  }
  relay_event* e = &R->events[R->nevents++];
  memset(e, 0, sizeof *e);
  e->type = type;
  e->id = c->id;
  return e;
}

void relay_flow(conn* c, bool paused) {
  relay_engine* R = c->e;
  if (paused) c->paused++;
  else c->resumed++;
  if (!c->flow_dirty) {
    c->flow_dirty = true;
    c->dirty_next = R->dirty;
    R->dirty = c;
  }
}

static void flush_flow(conn* c) {
  if (!c->paused && !c->resumed) return;
  relay_event* e = event_new(c, RELAY_FLOW);
  if (e) {
    e->paused = c->paused;
    e->resumed = c->resumed;
  }
  c->paused = c->resumed = 0;
}

static void send_events(relay_engine* R) {
  for (conn* c = R->dirty; c; c = c->dirty_next) {
    c->flow_dirty = false;
    if (c->state != CLOSED) flush_flow(c);
  }
  R->dirty = NULL;
  // A round that went down keeps its events: they are freed with the engine's, and the notice replaces them.
  if (R->nevents == 0 || R->down) return;
  enum relay_down why = R->emit(R->events, R->nevents, R->ctx);
  if (why) go_down(R, why, why == RELAY_DOWN_EVENT_ALLOC ? ENOMEM : 0);
  R->events = NULL;
  R->nevents = R->cap_events = 0;
}

// ---- close paths: every one ends here, which frees the entry and returns its pipes

static void reset_fd(int fd) {
  struct linger lg = {1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

// reset[i]: close side i with an RST (SO_LINGER 0) instead of a FIN. how: enum relay_close; failed and err
// for RELAY_CLOSE_ERROR->
static void finish(conn* c, const bool reset[2], enum relay_close how, int failed, int err) {
  relay_engine* R = c->e;
  if (c->state == CLOSED) return;
  flush_flow(c);
  relay_event* e = event_new(c, RELAY_CLOSED);
  if (e) {
    e->bytes[0] = c->rx[DOWN];
    e->bytes[1] = c->tx[DOWN];
    e->bytes[2] = c->rx[UP];
    e->bytes[3] = c->tx[UP];
    e->close = (uint8_t)how;
    if (how == RELAY_CLOSE_ERROR) {
      e->side = (uint8_t)failed;
      e->err = err;
    }
  }
  c->state = CLOSED;
  list_remove(&R->connect_list, c);
  list_remove(&R->idle_list, c);
  pthread_mutex_lock(&R->mu);
  table_remove(R, c);
  pthread_mutex_unlock(&R->mu);
  for (int i = 0; i < 2; i++) {
    if (reset[i]) reset_fd(c->s[i].fd);
    // close() alone leaves the registration while another descriptor shares the socket, and its events
    // would then point at a freed entry.
    if (c->registered) (void)epoll_ctl(R->epfd, EPOLL_CTL_DEL, c->s[i].fd, NULL);
    close(c->s[i].fd);
    c->s[i].fd = -1;
    relay_dir_release(R, &c->d[i]);
  }
  c->dead_next = R->dead;
  R->dead = c;
}

void relay_fail_side(conn* c, int failed, int err) {
  bool reset[2] = {false, false};
  // A cut-short stream: the other side sees an RST, never a clean end. Before the upstream connected
  // nothing was relayed, so the upstream is just closed.
  reset[1 - failed] = c->state == RELAYING;
  reset[failed] = c->state == RELAYING && err == ENOMEM;
  finish(c, reset, RELAY_CLOSE_ERROR, failed, err);
}

void relay_close_clean(conn* c) {
  static const bool none[2] = {false, false};
  finish(c, none, RELAY_CLOSE_CLEAN, 0, 0);
}

static void fail_connect(conn* c, int err, bool timeout) {
  relay_event* e = event_new(c, RELAY_FAILED);
  if (e) {
    e->err = err;
    e->timeout = timeout;
  }
  relay_close_clean(c);  // nothing was relayed yet: a plain close tells the client
}

static void on_connected(conn* c) {
  c->state = RELAYING;
  list_remove(&c->e->connect_list, c);
  event_new(c, RELAY_CONNECTED);
  relay_pump(c);
}

static void on_event(side* s, uint32_t events) {
  conn* c = s->conn;
  if (c->state == CLOSED) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->ready = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->ending = true;
  if (c->state == CONNECTING) {
    // The downstream waits, unread, until the upstream connected (node's pauseOnConnect does the same).
    if (s->index != UP || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    // A failed connect sets the socket's error before it wakes epoll, so an event without ERR or HUP is a
    // connect that succeeded: SO_ERROR is asked only when there is something to ask about.
    int err = 0;
    socklen_t len = sizeof err;
    if ((events & (EPOLLERR | EPOLLHUP)) && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) fail_connect(c, err, false);
    else on_connected(c);
    return;
  }
  relay_pump(c);
  // EPOLLERR comes with an RST whatever the interest. A side the pump did not read to its end (its direction
  // paused at the buffer limit, or its pipe full) still holds the error, and only a read would see it: take it
  // here, or the other side would wait for the idle timeout. A side that was read has had its error taken.
  if ((events & EPOLLERR) && c->state == RELAYING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) relay_fail_side(c, s->index, err);
  }
}

// ---- commands from the JS thread

static void add_conn(conn* c) {
  relay_engine* R = c->e;
  if (c->connect_err) {
    fail_connect(c, c->connect_err, false);
    return;
  }
  c->registered = true;  // a failed EPOLL_CTL_DEL in finish() is harmless
  for (int i = 0; i < 2; i++) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->s[i]};
    if (epoll_ctl(R->epfd, EPOLL_CTL_ADD, c->s[i].fd, &ev) != 0) {
      fail_connect(c, errno, false);
      return;
    }
  }
  c->connect_deadline = R->now + R->opts.connect_timeout_ms;
  list_append(&R->connect_list, c);
  relay_touch(c);  // node's idle timer runs from the accept, connect included
}

static void abort_conn(relay_engine* R, int64_t id, enum relay_abort_how how) {
  pthread_mutex_lock(&R->mu);
  conn* c = table_find(R, id);
  pthread_mutex_unlock(&R->mu);
  if (!c || c->state == CLOSED) return;
  if (how == RELAY_ABORT_LOOPED) {
    // The upstream reached this proxy itself: close it, reset the client.
    bool reset[2] = {true, false};
    finish(c, reset, RELAY_CLOSE_LOOP, 0, 0);
  } else {
    bool reset[2] = {true, c->state == RELAYING};
    finish(c, reset, RELAY_CLOSE_DRAIN, 0, 0);
  }
}

// Runs the queued commands; false once relay_engine_stop asked the thread to end.
static bool run_commands(relay_engine* R) {
  uint64_t n;
  while (read(R->wakefd, &n, sizeof n) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&R->mu);
  command* list = R->cmd_head;
  R->cmd_head = R->cmd_tail = NULL;
  pthread_mutex_unlock(&R->mu);
  while (list) {
    command* cmd = list;
    list = cmd->next;
    if (cmd->kind == CMD_ADD) add_conn(cmd->c);
    else abort_conn(R, cmd->id, cmd->how);
    free(cmd);
  }
  return !__atomic_load_n(&R->stopping, __ATOMIC_ACQUIRE);
}

static int push_command(relay_engine* R, command* cmd) {
  cmd->next = NULL;
  // A queue that is not empty has its wake on the way: the thread takes the whole queue after it read the
  // eventfd, so this command goes with the ones before it.
  bool pending = R->cmd_head != NULL;
  if (R->cmd_tail) R->cmd_tail->next = cmd;
  else R->cmd_head = cmd;
  R->cmd_tail = cmd;
  if (pending) return 0;
  uint64_t one = 1;
  return write(R->wakefd, &one, sizeof one) < 0 && errno != EAGAIN ? errno : 0;
}

// ---- the thread

static void expire(relay_engine* R) {
  while (R->connect_list.next && R->connect_list.next->connect_deadline <= R->now) {
    fail_connect(R->connect_list.next, ETIMEDOUT, true);
  }
  while (R->idle_list.next && R->idle_list.next->idle_deadline <= R->now) {
    conn* c = R->idle_list.next;
    event_new(c, RELAY_IDLE);
    static const bool none[2] = {false, false};
    finish(c, none, RELAY_CLOSE_IDLE, 0, 0);
  }
}

static int next_timeout(relay_engine* R) {
  int64_t next = -1;
  if (R->connect_list.next) next = R->connect_list.next->connect_deadline;
  if (R->idle_list.next && (next < 0 || R->idle_list.next->idle_deadline < next)) next = R->idle_list.next->idle_deadline;
  int64_t trim = relay_pipes_trim_at(&R->pipes);
  if (trim >= 0 && (next < 0 || trim < next)) next = trim;
  if (next < 0) return -1;
  int64_t wait = next - mono_ms();
  return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void free_dead(relay_engine* R) {
  while (R->dead) {
    conn* c = R->dead;
    R->dead = c->dead_next;
    free(c);
  }
}

// The thread's end, stopped or down: whatever is still open is closed without events. Down, both sides of
// each are reset: a stream cut short must not end in a FIN that passes for its end.
static void sweep(relay_engine* R) {
  pthread_mutex_lock(&R->mu);
  __atomic_store_n(&R->ended, true, __ATOMIC_RELEASE);
  for (size_t b = 0; b < R->nbuckets; b++) {
    for (conn *c = R->buckets[b], *next; c; c = next) {
      next = c->table_next;
      for (int i = 0; i < 2; i++) {
        if (R->down && c->state == RELAYING) reset_fd(c->s[i].fd);
        close(c->s[i].fd);
        relay_dir_release(R, &c->d[i]);
      }
      free(c);
    }
  }
  free(R->buckets);
  R->buckets = NULL;
  R->nbuckets = R->count = 0;
  // Commands a down thread never ran (their connections were in the table, and are gone with it).
  for (command *cmd = R->cmd_head, *next; cmd; cmd = next) {
    next = cmd->next;
    free(cmd);
  }
  R->cmd_head = R->cmd_tail = NULL;
  pthread_mutex_unlock(&R->mu);
  free(R->events);
  R->events = NULL;
  R->nevents = R->cap_events = 0;
  relay_pipes_free(&R->pipes);
}

static void* relay_main(void* arg) {
  relay_engine* R = arg;
  // Node's signal handlers run on its own thread; none is for this one (SIGPIPE stays ignored, as node set it).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  struct epoll_event evs[256];
  bool go_on = true;
  while (go_on && !R->down) {
    int n = FAULT(FAULT_EPOLL_WAIT) ? (errno = EBADF, -1) : epoll_wait(R->epfd, evs, 256, next_timeout(R));
    R->now = mono_ms();
    if (n < 0 && errno != EINTR) {
      go_down(R, RELAY_DOWN_EPOLL_WAIT, errno);
      break;
    }
    // Commands first: an abort queued before the JS thread reset a socket (the loop guard refusing the
    // looped hop) must win over that reset's event in the same round, so it closes as the loop.
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) go_on = run_commands(R) && go_on;
    }
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr != NULL) on_event(evs[i].data.ptr, evs[i].events);
    }
    expire(R);
    relay_pipes_trim(&R->pipes, R->now);
    send_events(R);
    free_dead(R);
  }
  sweep(R);
  R->on_exit(R->ctx);
  return NULL;
}

relay_engine* relay_engine_new(void) {
  relay_engine* R = calloc(1, sizeof *R);
  if (R && pthread_mutex_init(&R->mu, NULL) != 0) {
    free(R);
    return NULL;
  }
  return R;
}

void relay_engine_free(relay_engine* R) {
  if (!R) return;
  relay_engine_stop(R);
  pthread_mutex_destroy(&R->mu);
  free(R);
}

int relay_engine_start(relay_engine* R, const relay_options* opts, relay_emit_fn emit, relay_exit_fn on_exit, void* ctx) {
  if (R->running) return EALREADY;
  R->opts = *opts;
  R->emit = emit;
  R->on_exit = on_exit;
  R->ctx = ctx;
  R->connect_list = (dlink){NULL, NULL};
  R->idle_list = (dlink){NULL, NULL};
  R->dirty = R->dead = NULL;
  R->pipes = (relay_pipes){0};
  relay_pipes_init(&R->pipes, opts->buffer_limit, opts->max_pipes);
  FAULTS_INIT();
  R->stopping = R->ended = false;
  R->down = RELAY_UP;
  R->down_err = 0;
  R->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (R->epfd < 0) return errno;
  R->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  int err = 0;
  if (R->wakefd < 0 || epoll_ctl(R->epfd, EPOLL_CTL_ADD, R->wakefd, &ev) != 0) err = errno;
  if (!err) err = pthread_create(&R->thread, NULL, relay_main, R);
  if (err) {
    if (R->wakefd >= 0) close(R->wakefd);
    close(R->epfd);
    return err;
  }
  R->running = true;
  return 0;
}

bool relay_engine_running(relay_engine* R) { return R->running; }

enum relay_down relay_engine_down(relay_engine* R, int* err) {
  if (!__atomic_load_n(&R->ended, __ATOMIC_ACQUIRE)) return RELAY_UP;
  *err = R->down_err;
  return R->down;
}

void relay_engine_stop(relay_engine* R) {
  if (!R->running) return;
  __atomic_store_n(&R->stopping, true, __ATOMIC_RELEASE);
  // Only an eventfd at its maximum count refuses a write (EAGAIN), and that one wakes the thread already.
  uint64_t one = 1;
  while (write(R->wakefd, &one, sizeof one) < 0 && errno == EINTR) {
  }
  pthread_join(R->thread, NULL);
  // The thread emptied the table and the command queue as it ended (sweep), under the mutex that add and
  // abort take to queue.
  close(R->wakefd);
  close(R->epfd);
  R->running = false;
}

int relay_engine_add(relay_engine* R, int64_t id, int downstream_fd, bool owned, const struct sockaddr* dst, socklen_t dst_len,
                     const relay_bind* bind_to, struct sockaddr_storage* local, const char** syscall) {
  if (!R->running) {
    *syscall = "relayAdd";
    return ENOTCONN;
  }
  int down = -1, up = -1, err = 0, on = 1;
  conn* c = NULL;
  command* cmd = NULL;
  const char* refused;
  // owned: the acceptor's fd (acceptor.c), no node:net socket holds it; a failure leaves it the caller's.
  if ((down = owned ? downstream_fd : fcntl(downstream_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    *syscall = "dup";
  } else if ((errno = netns_socket(bind_to->netns, dst->sa_family, SOCK_STREAM, &up, syscall)) != 0) {
  } else if ((refused = transparent_setup(up, dst->sa_family, bind_to->transparent, bind_to->mark))) {
    *syscall = refused;
  } else if (setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on)) {
    *syscall = "setsockopt(TCP_NODELAY)";
  } else if (bind_to->addr && bind(up, bind_to->addr, bind_to->len)) {
    *syscall = "bind";
  } else if (!(c = calloc(1, sizeof *c)) || !(cmd = FAULT(FAULT_CMD_ALLOC) ? NULL : calloc(1, sizeof *cmd))) {
    errno = ENOMEM;
    *syscall = "malloc";
  } else {
    *syscall = NULL;
  }
  if (*syscall) {
    err = errno;
    if (down >= 0 && !owned) close(down);
    if (up >= 0) close(up);
    free(c);
    free(cmd);
    return err;
  }
  // connect(2)'s own failure is the connect's, reported as a failed event like a delayed one.
  if (connect(up, dst, dst_len) != 0 && errno != EINPROGRESS) c->connect_err = errno;
  socklen_t len = sizeof *local;
  memset(local, 0, sizeof *local);
  (void)getsockname(up, (struct sockaddr*)local, &len);
  c->id = id;
  c->state = CONNECTING;
  c->s[DOWN] = (side){.conn = c, .fd = down, .index = DOWN};
  c->s[UP] = (side){.conn = c, .fd = up, .index = UP};
  cmd->kind = CMD_ADD;
  cmd->c = c;
  c->e = R;
  pthread_mutex_lock(&R->mu);
  // A thread that ended (down) takes nothing more: the connection would wait in the table for nobody.
  bool ended = R->ended, inserted = !ended && table_insert(R, c);
  // the eventfd cannot overflow at one write per command; a failed wake is picked up by the next
  if (inserted) (void)push_command(R, cmd);
  pthread_mutex_unlock(&R->mu);
  if (!inserted) {
    if (!owned) close(down);
    close(up);
    free(c);
    free(cmd);
    *syscall = ended ? "relayAdd" : "malloc";
    return ended ? ENOTCONN : ENOMEM;
  }
  return 0;
}

int relay_engine_abort(relay_engine* R, int64_t id, enum relay_abort_how how) {
  if (!R->running) return ENOTCONN;
  command* cmd = FAULT(FAULT_CMD_ALLOC) ? NULL : calloc(1, sizeof *cmd);
  if (!cmd) return ENOMEM;
  cmd->kind = CMD_ABORT;
  cmd->id = id;
  cmd->how = how;
  pthread_mutex_lock(&R->mu);
  bool ended = R->ended;
  int err = ended ? ENOTCONN : push_command(R, cmd);
  pthread_mutex_unlock(&R->mu);
  if (ended) free(cmd);  // queued, a command is the thread's (or sweep()'s) to free
  return err;
}

bool relay_engine_tcp_info(relay_engine* R, int64_t id, uint32_t* state, uint32_t* last_ack_recv_ms) {
  bool found = false;
  pthread_mutex_lock(&R->mu);
  conn* c = table_find(R, id);
  if (c) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(c->s[UP].fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
      *state = info.tcpi_state;
      *last_ack_recv_ms = info.tcpi_last_ack_recv;
      found = true;
    }
  }
  pthread_mutex_unlock(&R->mu);
  return found;
}

void relay_engine_stats(relay_engine* R, size_t* connections, size_t* pipes_in_use, size_t* pipes_pooled, size_t* pipes_max) {
  pthread_mutex_lock(&R->mu);
  *connections = R->count;
  pthread_mutex_unlock(&R->mu);
  *pipes_in_use = relay_pipes_in_use(&R->pipes);
  *pipes_pooled = relay_pipes_pooled(&R->pipes);
  *pipes_max = R->pipes.max;
}
