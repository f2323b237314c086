// Moving bytes for the relay engine: splice(2) from one socket into a pipe and from the pipe into the other
// socket, so the bytes never enter user space. A pipe is taken from the shared pool when a direction has
// bytes to move and goes back as soon as it is empty: an idle connection holds no pipe (10,000 idle
// connections cost their 20,000 sockets, not 40,000 more pipe fds). The pipes in use and pooled are at most
// max_pipes, whose descriptors the sidecar sets aside in its budget (src/proxy/fd-budget.ts): a pipe never
// takes the descriptor an accepted connection was promised. Where no pipe can be had (that limit, or
// EMFILE) the direction's bytes go by read/write through a heap buffer until it is empty, then a pipe is
// tried again; where splice refuses the socket (EINVAL), by read/write from then on. The buffer, too, is
// held only while bytes are in it. Sockets are non-blocking and registered edge-triggered, so each pass
// reads until EAGAIN (or the buffer limit) and writes until EAGAIN.
#define _GNU_SOURCE
#include "relay-internal.h"
#include "faults.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// Pipes kept for reuse beyond that are closed: each one is two fds and counts against the user's pipe pages.
#define POOL_MAX 64

// A pool nobody took from for this long is closed: an idle sidecar holds no pipe at all.
#define POOL_IDLE_MS 1000

void relay_pipes_init(relay_pipes* p, size_t buffer_limit, size_t max) {
  // The kernel rounds F_SETPIPE_SZ up to a power-of-two number of pages.
  p->wanted_size = buffer_limit < 4096 ? 4096 : buffer_limit;
  p->max = max;
}

void relay_pipes_free(relay_pipes* ps) {
  while (ps->pool) {
    relay_pipe* p = ps->pool;
    ps->pool = p->next;
    close(p->r);
    close(p->w);
    free(p);
  }
  __atomic_store_n(&ps->pooled, 0, __ATOMIC_RELAXED);
}

// The pool's deadline for relay.c's epoll timeout: -1 when there is nothing to close.
int64_t relay_pipes_trim_at(const relay_pipes* p) { return p->pool && p->in_use == 0 ? p->last_use + POOL_IDLE_MS : -1; }

void relay_pipes_trim(relay_pipes* p, int64_t now) {
  int64_t at = relay_pipes_trim_at(p);
  if (at >= 0 && now >= at) relay_pipes_free(p);
}

size_t relay_pipes_in_use(relay_pipes* p) { return __atomic_load_n(&p->in_use, __ATOMIC_RELAXED); }
size_t relay_pipes_pooled(relay_pipes* p) { return __atomic_load_n(&p->pooled, __ATOMIC_RELAXED); }

static relay_pipe* pipe_take(relay_engine* e) {
  relay_pipes* ps = &e->pipes;
  ps->last_use = e->now;
  relay_pipe* p = ps->pool;
  // The pool is empty here, so every pipe there is is in use.
  if (!p && ps->in_use >= ps->max) return NULL;
  if (p) {
    ps->pool = p->next;
    __atomic_store_n(&ps->pooled, ps->pooled - 1, __ATOMIC_RELAXED);
  } else {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return NULL;
    p = malloc(sizeof *p);
    if (!p) {
      close(fds[0]);
      close(fds[1]);
      return NULL;
    }
    p->r = fds[0];
    p->w = fds[1];
    // Above /proc/sys/fs/pipe-max-size or the user's pipe pages this fails (EPERM): the pipe keeps its
    // default size and the direction's limit is that size.
    (void)fcntl(p->w, F_SETPIPE_SZ, (int)(ps->wanted_size > 1 << 30 ? 1 << 30 : ps->wanted_size));
    int size = fcntl(p->w, F_GETPIPE_SZ);
    p->cap = size > 0 ? (size_t)size : 65536;
  }
  p->next = NULL;
  __atomic_store_n(&ps->in_use, ps->in_use + 1, __ATOMIC_RELAXED);
  return p;
}

static void pipe_give(relay_engine* e, relay_pipe* p, bool clean) {
  relay_pipes* ps = &e->pipes;
  ps->last_use = e->now;
  __atomic_store_n(&ps->in_use, ps->in_use - 1, __ATOMIC_RELAXED);
  if (!clean || ps->pooled >= POOL_MAX) {
    close(p->r);
    close(p->w);
    free(p);
    return;
  }
  p->next = ps->pool;
  ps->pool = p;
  __atomic_store_n(&ps->pooled, ps->pooled + 1, __ATOMIC_RELAXED);
}

// Gives back what the direction holds; a pipe with bytes left in it (a reset cut them off) is closed, not pooled.
void relay_dir_release(relay_engine* e, dir* d) {
  if (d->pipe) pipe_give(e, d->pipe, d->in_pipe == 0);
  d->pipe = NULL;
  d->in_pipe = 0;
  free(d->buf);
  d->buf = NULL;
  d->buf_len = d->buf_off = 0;
}

static size_t buffered(const dir* d) { return d->rw ? d->buf_len - d->buf_off : d->in_pipe; }

static size_t limit_of(relay_engine* e, const dir* d) {
  size_t limit = e->opts.buffer_limit;
  if (!d->rw && d->pipe && d->pipe->cap < limit) limit = d->pipe->cap;
  return limit;
}

// Switches a direction to read/write, moving what its pipe holds into the buffer; false on failure (errno set).
static bool to_rw(relay_engine* e, dir* d) {
  d->rw = true;
  d->no_splice = true;
  if (!d->pipe) return true;
  size_t n = d->in_pipe;
  if (n > 0) {
    // The whole limit, not just what the pipe holds: the reads that follow fill the buffer up to the limit
    // (the pipe never holds more than it, limit_of()).
    d->buf = FAULT(FAULT_RW_ALLOC) ? NULL : malloc(e->opts.buffer_limit);
    if (!d->buf) {
      errno = ENOMEM;
      return false;
    }
    while (d->buf_len < n) {
      ssize_t r = read(d->pipe->r, d->buf + d->buf_len, n - d->buf_len);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return false;
      if (r == 0) {
        // The pipe held less than counted: no call failed, so errno would be a stale one.
        errno = EIO;
        return false;
      }
      d->buf_len += (size_t)r;
    }
    d->in_pipe = 0;
  }
  pipe_give(e, d->pipe, true);
  d->pipe = NULL;
  return true;
}

// Writes what the direction holds to fd: >0 bytes written, 0 would block, -1 error (errno).
static ssize_t write_out(relay_engine* e, dir* d, int fd) {
  for (;;) {
    ssize_t n;
    if (d->rw) {
      n = send(fd, d->buf + d->buf_off, d->buf_len - d->buf_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else if (FAULT(FAULT_SPLICE_EINVAL)) {
      n = -1;
      errno = EINVAL;
    } else {
      n = splice(d->pipe->r, NULL, fd, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    }
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    if (!d->rw && errno == EINVAL) {
      if (!to_rw(e, d)) return -1;
      continue;
    }
    return -1;
  }
}

// The direction's read/write buffer, empty; false (errno ENOMEM) when it cannot be had.
static bool rw_buffer(relay_engine* e, dir* d) {
  d->buf = FAULT(FAULT_READ_ALLOC) ? NULL : malloc(e->opts.buffer_limit);
  if (!d->buf) {
    // Not "try again later": the sockets are edge-triggered, and the event that brought these bytes was the
    // last one they get, so the connection would stall until the idle timeout (or forever).
    errno = ENOMEM;
    return false;
  }
  d->buf_len = d->buf_off = 0;
  return true;
}

// Reads from fd into the direction, at most `room` bytes: >0 read, 0 end of stream, -2 would block, -1 error.
static ssize_t read_in(relay_engine* e, dir* d, int fd, size_t room, bool* ready) {
  for (;;) {
    if (!d->rw && !d->pipe) {
      d->pipe = pipe_take(e);
      if (!d->pipe) d->rw = true;  // no pipe to be had (max_pipes, EMFILE): read/write until the buffer is empty
      else if (d->pipe->cap < room) room = d->pipe->cap;
    }
    ssize_t n;
    if (d->rw) {
      if (!d->buf && !rw_buffer(e, d)) return -1;
      n = recv(fd, d->buf + d->buf_len, room, MSG_DONTWAIT);
    } else {
      n = splice(fd, NULL, d->pipe->w, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    }
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      // A splice into a pipe that holds bytes may have stopped at the pipe (its pages taken by small
      // segments, short of its byte count): only then may the socket still have bytes, read once the pipe
      // emptied.
      if (d->rw || d->in_pipe == 0) *ready = false;
      return -2;
    }
    if (!d->rw && errno == EINVAL && d->in_pipe == 0) {
      if (!to_rw(e, d)) return -1;
      continue;
    }
    return -1;
  }
}

// A direction holding nothing that has not yet filled the scratch buffer in one read: recv into the scratch
// buffer and send at once. A short recv emptied the socket (unless an end is pending, side.ending), so no read
// that returns EAGAIN follows. What the destination does not take goes to the read/write buffer.
// Returns what read_in() does; -3: the send failed (errno), the destination's fault.
static ssize_t move_small(conn* c, int i, size_t room) {
  relay_engine* e = c->e;
  dir* d = &c->d[i];
  side* s = &c->s[i];
  size_t want = room < RELAY_SCRATCH ? room : RELAY_SCRATCH;
  ssize_t n;
  while ((n = recv(s->fd, e->scratch, want, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n < 0 && errno == EAGAIN) s->ready = false;
  if (n <= 0) return n < 0 && errno == EAGAIN ? -2 : n;
  if ((size_t)n == want) d->bulk = true;
  else if (!s->ending) s->ready = false;
  // One send: a stream socket that takes less is full, and a second would return EAGAIN.
  size_t sent = 0;
  for (;;) {
    // (the fault: the destination takes one byte, as a socket with room for one would)
    size_t len = FAULT(FAULT_SEND_SHORT) ? 1 : (size_t)n;
    ssize_t w = send(c->s[1 - i].fd, e->scratch, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) return -3;
    if (w > 0) sent = (size_t)w;
    break;
  }
  c->tx[1 - i] += sent;
  if (sent < (size_t)n) {
    if (!rw_buffer(e, d)) return -1;
    memcpy(d->buf, e->scratch + sent, (size_t)n - sent);
    d->buf_len = (size_t)n - sent;
    d->rw = true;
  }
  return n;
}

// Drops the direction's buffer once it is empty (the pipe back to the pool).
static void settle(relay_engine* e, dir* d) {
  if (buffered(d) > 0) return;
  if (d->pipe) {
    pipe_give(e, d->pipe, true);
    d->pipe = NULL;
  }
  if (d->buf) {
    free(d->buf);
    d->buf = NULL;
    d->buf_len = d->buf_off = 0;
  }
  if (!d->no_splice) d->rw = false;
}

// One direction, as far as it goes now; false when the connection was closed.
static bool pump_dir(conn* c, int i) {
  relay_engine* e = c->e;
  size_t buffer_limit = e->opts.buffer_limit;
  dir* d = &c->d[i];
  int src = c->s[i].fd, dst = c->s[1 - i].fd;
  for (;;) {
    bool progress = false;
    if (buffered(d) > 0) {
      ssize_t n = write_out(e, d, dst);
      if (n < 0) {
        relay_fail_side(c, 1 - i, errno);
        return false;
      }
      if (n > 0) {
        if (d->rw) {
          d->buf_off += (size_t)n;
        } else {
          d->in_pipe -= (size_t)n;
        }
        c->tx[1 - i] += (uint64_t)n;
        progress = true;
      }
    }
    // A direction on read/write for want of a pipe takes one again as soon as its buffer is empty, also
    // mid-stream (settle() below only sees it empty when the source has nothing more).
    if (d->rw && !d->no_splice && buffered(d) == 0 && (e->pipes.pool || e->pipes.in_use < e->pipes.max)) settle(e, d);
    if (!d->eof) {
      size_t have = buffered(d), limit = limit_of(e, d);
      if (have >= limit) {
        if (!d->paused) relay_flow(c, true);
        d->paused = true;
      } else {
        if (d->paused) relay_flow(c, false);
        d->paused = false;
        // What is left goes to the front: a buffer whose tail is full would stop reading short of the limit,
        // unseen by the flow counters.
        if (d->rw && d->buf && d->buf_off > 0 && (d->buf_off == d->buf_len || d->buf_len == buffer_limit)) {
          memmove(d->buf, d->buf + d->buf_off, d->buf_len - d->buf_off);
          d->buf_len -= d->buf_off;
          d->buf_off = 0;
        }
        size_t room = limit - have;
        if (d->rw && d->buf && buffer_limit - d->buf_len < room) room = buffer_limit - d->buf_len;
        bool small = !d->bulk && have == 0 && !d->pipe && !d->buf;
        ssize_t n = room == 0 || !c->s[i].ready ? -2 : small ? move_small(c, i, room) : read_in(e, d, src, room, &c->s[i].ready);
        if (n == -3) {
          relay_fail_side(c, 1 - i, errno);
          return false;
        }
        if (n > 0) {
          if (small) {
            // sent on already; what was not is in the buffer
          } else if (d->rw) {
            d->buf_len += (size_t)n;
          } else {
            d->in_pipe += (size_t)n;
          }
          c->rx[i] += (uint64_t)n;
          progress = true;
        } else if (n == 0) {
          // A FIN; but an RST right behind the last bytes must not pass for one.
          int err = 0;
          socklen_t len = sizeof err;
          if (getsockopt(src, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
            relay_fail_side(c, i, err);
            return false;
          }
          d->eof = true;
          progress = true;
        } else if (n == -1) {
          relay_fail_side(c, i, errno);
          return false;
        }
      }
    }
    if (progress) relay_touch(c);
    settle(e, d);
    if (d->eof && buffered(d) == 0 && !d->shut) {
      d->shut = true;
      // ENOTCONN: the destination is already gone; its read side reports how when polled.
      (void)shutdown(dst, SHUT_WR);
    }
    if (!progress) return true;
  }
}

bool relay_pump(conn* c) {
  if (c->state != RELAYING) return true;
  if (!pump_dir(c, DOWN) || !pump_dir(c, UP)) return false;
  if (c->d[DOWN].shut && c->d[UP].shut) {
    relay_close_clean(c);
    return false;
  }
  return true;
}
