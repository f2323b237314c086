// One DNS-over-TCP client connection (RFC 7766): pipelined queries answered as they complete, with
// backpressure. A query holds one of the connection's pipeline slots from the moment it is read until its
// reply is in the kernel's send buffer, so a client that pipelines and never reads stops being read after
// tcpPipelineDepth queries; and while the replies waiting across all connections pass maxTcpBufferedBytes,
// no connection is read at all. Without this, replies for queries read without limit piled up in memory.
// Time limits: a frame must arrive whole within tcpFrameMs of its first byte, and a connection with no
// query read and no reply written for tcpIdleMs is closed; a byte on its own proves nothing (slow-loris).
import type { Socket } from 'node:net'
import type { Logger } from '../logger.js'
import type { Gauge } from '../stats/stats.js'
import type { DnsConfig } from './config.js'
import type { DnsMetrics } from './metrics.js'
import type { Resolver } from './resolver.js'
import { frame, FrameReader } from './tcp-frames.js'

/** Queries one TCP connection may have read and not yet answered into the kernel. */
export const tcpPipelineDepth = 64

/** The bytes of replies waiting in userspace across all connections, and the connections paused for them. */
export class TcpBacklog {
  bytes = 0
  readonly limit: number
  readonly #gauge: Gauge
  readonly #blocked = new Set<DnsTcpConnection>()

  constructor(limit: number, gauge: Gauge) {
    this.limit = limit
    this.#gauge = gauge
  }

  get full(): boolean {
    return this.bytes >= this.limit
  }

  add(n: number): void {
    this.bytes += n
    this.#gauge.inc(n)
  }

  sub(n: number): void {
    if (n === 0) return
    this.bytes -= n
    this.#gauge.dec(n)
    if (this.full) return
    for (const c of [...this.#blocked]) {
      this.#blocked.delete(c)
      c.resume()
    }
  }

  block(c: DnsTcpConnection): void {
    this.#blocked.add(c)
  }

  forget(c: DnsTcpConnection): void {
    this.#blocked.delete(c)
  }
}

export interface TcpDeps {
  config: DnsConfig
  resolver: Resolver
  metrics: DnsMetrics
  log: Logger
  backlog: TcpBacklog
}

let activity = 0

export class DnsTcpConnection {
  readonly socket: Socket
  readonly #deps: TcpDeps
  readonly #client: string
  readonly #reader: FrameReader
  /** queries read whose reply is not yet in the kernel */
  #pending = 0
  /** bytes of this connection's replies waiting in userspace (part of the backlog) */
  #buffered = 0
  #closing = false
  #closed = false
  /** order of the last query read or reply written (a sequence: no two equal): the lowest gives way first */
  lastActive = ++activity
  readonly #idleTimer: NodeJS.Timeout
  #frameTimer: NodeJS.Timeout | undefined

  constructor(socket: Socket, deps: TcpDeps) {
    this.socket = socket
    this.#deps = deps
    this.#client = `${socket.remoteAddress}:${socket.remotePort}`
    this.#idleTimer = setTimeout(() => this.#timedOut('idle'), deps.config.tcpIdleMs)
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.#onClose())
    this.#reader = new FrameReader(socket, deps.config.maxQueryBytes, {
      ready: () => this.#ready(),
      onMessage: (msg) => {
        this.#active()
        this.#query(msg)
      },
      onChunk: () => this.#watchFrame(),
      onError: (err) => {
        deps.metrics.malformed.inc()
        deps.log.debug({ client: this.#client, err: err.message }, 'dns tcp: bad frame, closing after the answers in flight')
        this.#finish()
      },
    })
  }

  /** No query of its own waits for an answer: it may give way to a new connection when all slots are taken. */
  get idle(): boolean {
    return this.#pending === 0
  }

  /** Reads again if what paused it is gone (ready() decides). */
  resume(): void {
    if (this.#closing || this.#closed || !this.#reader.paused) return
    this.#reader.resume()
    this.#watchFrame()
  }

  /** Closed to make room for a new connection. */
  evict(): void {
    this.#deps.metrics.tcpEvicted.inc()
    this.socket.destroy()
  }

  #active(): void {
    this.lastActive = ++activity
    this.#idleTimer.refresh()
    clearTimeout(this.#frameTimer)
    this.#frameTimer = undefined
  }

  /** A frame begun and not complete gets tcpFrameMs from its first byte (none while we hold it unread). */
  #watchFrame(): void {
    if (!this.#reader.partial) {
      clearTimeout(this.#frameTimer)
      this.#frameTimer = undefined
    } else if (!this.#frameTimer) {
      this.#frameTimer = setTimeout(() => this.#timedOut('frame'), this.#deps.config.tcpFrameMs)
    }
  }

  #timedOut(what: 'idle' | 'frame'): void {
    if (this.#closed) return
    // a frame held back by our own backpressure is not the client's delay
    if (what === 'frame' && !this.#reader.partial) return void (this.#frameTimer = undefined)
    ;(what === 'idle' ? this.#deps.metrics.tcpIdleTimeout : this.#deps.metrics.tcpFrameTimeout).inc()
    this.#deps.log.debug({ client: this.#client, what }, 'dns tcp: timed out, closing')
    this.socket.destroy()
  }

  #ready(): boolean {
    if (this.#pending < tcpPipelineDepth && !this.#deps.backlog.full) return true
    if (this.#deps.backlog.full) this.#deps.backlog.block(this)
    this.#deps.metrics.tcpPausedReading.inc()
    return false
  }

  #query(msg: Buffer): void {
    this.#pending++
    void this.#deps.resolver.resolve(Buffer.from(msg), 'tcp', this.#client).then((out) => {
      if (this.#closed || this.socket.destroyed) return
      if (!out) {
        // A message without even a header gets no reply; the stream is then suspect too.
        this.#pending--
        return this.#finish()
      }
      const bytes = frame(out)
      this.#buffered += bytes.length
      this.#deps.backlog.add(bytes.length)
      this.socket.write(bytes, () => this.#flushed(bytes.length))
    })
  }

  /** A reply reached the kernel (or the socket died with it): its slot and its bytes are free. */
  #flushed(n: number): void {
    // destroyed: the callbacks of its unsent replies come now; read nothing more (close settles the bytes)
    if (this.#closed || this.socket.destroyed) return
    this.#active()
    this.#pending--
    this.#buffered -= n
    this.#deps.backlog.sub(n)
    if (this.#closing) this.#endWhenAnswered()
    else this.resume()
  }

  /** After a bad frame the stream cannot be trusted: read nothing else, answer what was read, then end. */
  #finish(): void {
    this.#closing = true
    this.#reader.stop()
    this.#endWhenAnswered()
  }

  #endWhenAnswered(): void {
    if (this.#pending === 0) this.socket.end()
  }

  #onClose(): void {
    this.#closed = true
    clearTimeout(this.#idleTimer)
    clearTimeout(this.#frameTimer)
    this.#reader.stop()
    this.#deps.backlog.forget(this)
    const left = this.#buffered
    this.#buffered = 0
    this.#deps.backlog.sub(left)
  }
}
