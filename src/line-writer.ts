// Writes lines to a file descriptor without ever blocking the process on it. pino's sonic-boom retries a
// failed write every 100 ms inside a synchronous loop (its flushSync, also run at exit), so a full disk or a
// stuck pipe froze the whole sidecar, SIGTERM included. Here at most one asynchronous write is in flight;
// a write that fails drops its lines and reports them, lines beyond the buffer limit are dropped, and the
// next line tries again, so writing resumes by itself once the disk has space.
import { closeSync, write, writeSync } from 'node:fs'

export interface LineWriterEvents {
  /** a write failed (any errno but EAGAIN): its lines are lost */
  failed?(err: NodeJS.ErrnoException, lines: number): void
  /** lines refused because the buffer is over its limit */
  overflow?(lines: number): void
  /** a write completed */
  completed?(lines: number, bytes: number): void
}

export interface LineWriterOptions {
  /** bytes held in memory while the fd is slow; 1 MiB by default */
  maxBuffered?: number
  events?: LineWriterEvents
}

const eagainRetryMs = 100

export class LineWriter {
  #fd: number
  #queue: string[] = []
  #queued = 0
  #inFlight = 0
  #writing = false
  /** the fd ends inside a line (a write failed after a partial write): start the next chunk on a new line */
  #torn = false
  #retry: NodeJS.Timeout | undefined
  #idle: (() => void)[] = []
  /** fds replaced by setFd, closed once no write on them is in flight */
  #retired: number[] = []
  readonly #max: number
  readonly #events: LineWriterEvents

  constructor(fd: number, options: LineWriterOptions = {}) {
    this.#fd = fd
    this.#max = options.maxBuffered ?? 1024 * 1024
    this.#events = options.events ?? {}
  }

  /** bytes waiting or being written */
  get buffered(): number {
    return this.#queued + this.#inFlight
  }

  /** Queues one line (with its newline). False when it was dropped because the buffer is full. */
  write(line: string): boolean {
    if (this.#fd < 0) return false // closed: a line after the drain has nowhere to go
    const bytes = Buffer.byteLength(line)
    if (this.#queued + bytes > this.#max) {
      this.#events.overflow?.(1)
      return false
    }
    this.#queue.push(line)
    this.#queued += bytes
    if (!this.#writing && this.#retry === undefined) this.#next()
    return true
  }

  /** Switches to a new fd (a reopened file); the old one is closed once its write is done. */
  setFd(fd: number): void {
    const old = this.#fd
    this.#fd = fd
    if (old > 2) {
      if (this.#writing) this.#retired.push(old)
      else closeQuietly(old)
    }
  }

  /** Resolves once everything queued is written or dropped, or after timeoutMs, whichever is first. */
  flush(timeoutMs: number): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#idle.push(done)
    })
  }

  /** One synchronous attempt at what is queued, for the last lines at exit; never retries. */
  flushOnce(): void {
    if (this.#writing || this.#queue.length === 0) return
    try {
      writeSync(this.#fd, this.#take().text)
    } catch {
      // nothing more can be done at exit
    }
  }

  /** Gives up what is queued and closes the fd (unless stdout or stderr). */
  close(): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
    this.#queue = []
    this.#queued = 0
    if (this.#fd > 2 && !this.#writing) closeQuietly(this.#fd)
    else if (this.#fd > 2) this.#retired.push(this.#fd)
    this.#fd = -1
  }

  #take(): { text: string; lines: number } {
    const lines = this.#queue.length
    const text = (this.#torn ? '\n' : '') + this.#queue.join('')
    this.#queue = []
    this.#queued = 0
    return { text, lines }
  }

  #next(): void {
    this.#retry = undefined
    if (this.#queue.length === 0 || this.#fd < 0) {
      for (const done of this.#idle.splice(0)) done()
      return
    }
    const { text, lines } = this.#take()
    this.#writeChunk(this.#fd, Buffer.from(text), lines)
  }

  #writeChunk(fd: number, chunk: Buffer, lines: number, offset = 0): void {
    this.#writing = true
    this.#inFlight = chunk.length - offset
    write(fd, chunk, offset, chunk.length - offset, null, (err, n) => {
      this.#writing = false
      this.#inFlight = 0
      if (err?.code === 'EAGAIN') {
        // a non-blocking pipe or tty is full: keep the bytes and try again shortly, off the event loop
        this.#writing = true
        this.#inFlight = chunk.length - offset
        this.#retry = setTimeout(() => {
          this.#retry = undefined
          this.#writeChunk(fd, chunk, lines, offset)
        }, eagainRetryMs).unref()
        return
      }
      if (err) {
        this.#torn = offset > 0 || this.#torn
        this.#events.failed?.(err, lines)
      } else if (offset + n < chunk.length) {
        this.#torn = true
        return this.#writeChunk(fd, chunk, lines, offset + n)
      } else {
        this.#torn = false
        this.#events.completed?.(lines, chunk.length)
      }
      for (const old of this.#retired.splice(0)) closeQuietly(old)
      this.#next()
    })
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed
  }
}
