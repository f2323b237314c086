// The HBONE server side of the ztunnel (ztunnel's src/proxy/inbound.rs): mutual TLS 1.3 with the mesh CA,
// ALPN h2, HTTP/2, and one CONNECT per tunnel. Answers as ztunnel does: a method other than CONNECT or an
// :authority that is not host:port is 400, a target this server does not serve is 400 (validate_destination's
// IPMismatch), a target it cannot connect to is 503; 200 only once the connection to the target is made.
// Bytes then go both ways; a half-close is END_STREAM, a reset on either side resets the other.
import { EventEmitter } from 'node:events'
import {
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Logger } from '../../logger.js'
import { BurstLog } from '../../proxy/burst-log.js'
import { HBONE_LIMITS, HBONE_TLS, type HboneIdentity, type HostPort, parseAuthority, spiffeIds } from './common.js'
import { splice } from './splice.js'

/** Who opened a tunnel: the SPIFFE identity in its client certificate and the address it came from. */
export interface HbonePeer {
  identity: string
  address: string
  port: number
}

export interface HboneServerOptions {
  identity: HboneIdentity
  /** Connects to the tunnel's target (the ztunnel: from the peer's address, in the pod). Rejects: 503. */
  dial(target: HostPort, peer: HbonePeer): Promise<Duplex>
  /** Whether this server serves the target (ztunnel: it is the pod's own address); false: 400. Default: all. */
  accepts?(target: HostPort): boolean
  log?: Logger
  /** SETTINGS_MAX_CONCURRENT_STREAMS per session; default ztunnel's 200 */
  maxConcurrentStreams?: number
}

export type HboneRefusal = 'method' | 'authority' | 'target' | 'dial'

/** Numbers only, so the ztunnel can expose them as they are. */
export interface HboneServerCounters {
  /** TLS sessions that completed the handshake with h2 */
  sessions: number
  /** handshakes that failed: no or untrusted or expired client certificate, garbage, plain HTTP */
  tlsFailures: number
  /** TLS without ALPN h2 (the handshake fails or the connection is closed after it) */
  alpnFailures: number
  /** HTTP/2 sessions that ended on a protocol error (not a TLS failure) */
  sessionErrors: number
  /** CONNECTs answered 200 */
  accepted: number
  /** requests refused, by reason (method, authority → 400; target → 400; dial → 503) */
  refused: Record<HboneRefusal, number>
  /** accepted tunnels that ended by a reset (RST_STREAM from the client or a reset or error of the target) */
  reset: number
  /** tunnels open now */
  active: number
}

/** Emitted as 'tunnel' when a CONNECT is answered 200 and as 'tunnelClose' when it ends. */
export interface HboneTunnel {
  peer: HbonePeer
  target: HostPort
  headers: IncomingHttpHeaders
  /** bytes from the client to the target and back, at close */
  bytesIn: number
  bytesOut: number
  /** at close: how it ended */
  end?: 'closed' | 'reset'
}

/** A peer as `ip:port`, IPv4-mapped addresses made plain. */
function source(socket: Socket | undefined): string {
  const address = (socket?.remoteAddress ?? '?').replace(/^::ffff:/, '')
  return address.includes(':') ? `[${address}]:${socket?.remotePort}` : `${address}:${socket?.remotePort}`
}

const refusalStatus: Record<HboneRefusal, number> = { method: 400, authority: 400, target: 400, dial: 503 }

export class HboneServer extends EventEmitter {
  readonly counters: HboneServerCounters = {
    sessions: 0,
    tlsFailures: 0,
    alpnFailures: 0,
    sessionErrors: 0,
    accepted: 0,
    refused: { method: 0, authority: 0, target: 0, dial: 0 },
    reset: 0,
    active: 0,
  }
  readonly #opts: HboneServerOptions
  readonly #server: Http2SecureServer
  readonly #sockets = new Set<Socket>()
  /** connections refused before any CONNECT (TLS, ALPN, HTTP/2 errors): one warning per burst, as anyone can send them */
  readonly #refused: BurstLog<{ src: string; why: string }>

  constructor(opts: HboneServerOptions) {
    super()
    this.#opts = opts
    this.#refused = new BurstLog(
      (e) =>
        opts.log?.warn(
          { src: e.src },
          `HBONE connection from ${e.src} refused: ${e.why}. One line per burst (counted in ztunnel.hbone.inbound.server.*).`,
        ),
      (b) =>
        opts.log?.warn(
          { count: b.count, sources: b.sources },
          `${b.count} more HBONE ${b.count === 1 ? 'connection' : 'connections'} refused in ${(b.ms / 1000).toFixed(1)} s, from ${b.sources.join(', ')}`,
        ),
    )
    const max = opts.maxConcurrentStreams ?? HBONE_LIMITS.serverMaxConcurrentStreams
    this.#server = createSecureServer({
      ...HBONE_TLS,
      cert: opts.identity.cert,
      key: opts.identity.key,
      ca: opts.identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      allowHTTP1: false,
      handshakeTimeout: HBONE_LIMITS.handshakeMs,
      maxSessionMemory: 64,
      settings: {
        maxConcurrentStreams: max,
        initialWindowSize: HBONE_LIMITS.streamWindow,
        maxFrameSize: HBONE_LIMITS.frameSize,
        maxHeaderListSize: HBONE_LIMITS.maxHeaderListSize,
      },
    })
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s)
      s.once('close', () => this.#sockets.delete(s))
    })
    this.#server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      // OpenSSL refuses a client that offers ALPN but not h2; one offering none gets to unknownProtocol
      if (err.code === 'ERR_SSL_NO_APPLICATION_PROTOCOL') this.counters.alpnFailures++
      else this.counters.tlsFailures++
      this.#refused.record({ src: source(socket), why: `the TLS handshake failed (${err.message})` }, source(socket))
      socket.destroy()
    })
    // Node would hold a non-h2 TLS connection for unknownProtocolTimeout; ztunnel speaks nothing else
    this.#server.on('unknownProtocol', (socket: TLSSocket) => {
      this.counters.alpnFailures++
      this.#refused.record(
        { src: source(socket), why: `the peer did not offer h2 (ALPN ${socket.alpnProtocol || 'none'})` },
        source(socket),
      )
      socket.destroy()
    })
    this.#server.on('session', (session: ServerHttp2Session) => this.#session(session))
    this.#server.on('stream', (stream, headers) => this.#stream(stream, headers))
  }

  /** Listens on an address, or on a socket already bound and listening (`{ fd }`, e.g. made in a pod's netns). */
  async listen(where: { host: string; port: number } | { fd: number }): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(where, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    return this.#server.address() as AddressInfo
  }

  /** Serves a TCP connection accepted elsewhere (the pod proxy's own 15008 listener). */
  handle(socket: Socket): void {
    this.#server.emit('connection', socket)
  }

  /** Stops listening and ends every connection (open tunnels are reset). */
  async close(): Promise<void> {
    this.#refused.flush()
    const closed = this.#server.listening ? new Promise<void>((resolve) => this.#server.close(() => resolve())) : null
    for (const s of this.#sockets) s.destroy()
    await closed
  }

  #session(session: ServerHttp2Session): void {
    this.counters.sessions++
    // ztunnel's HTTP2_CONNECTION_WINDOW_SIZE; SETTINGS only carry the stream window
    session.setLocalWindowSize(HBONE_LIMITS.connectionWindow)
    // a protocol error (garbage after the handshake) must end this session only, never the process
    session.on('error', (err) => {
      this.counters.sessionErrors++
      const src = source(session.socket)
      this.#refused.record({ src, why: `its HTTP/2 session failed (${err.message})` }, src)
    })
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    const socket = stream.session?.socket as TLSSocket | undefined
    const peer: HbonePeer = {
      identity: spiffeIds(socket?.getPeerX509Certificate())[0] ?? '',
      address: socket?.remoteAddress ?? '',
      port: socket?.remotePort ?? 0,
    }
    stream.on('error', () => {}) // a reset stream errors; its end is counted on close
    if (headers[':method'] !== 'CONNECT') return this.#refuse(stream, 'method', peer, headers)
    const target = parseAuthority(headers[':authority'])
    if (!target) return this.#refuse(stream, 'authority', peer, headers)
    if (this.#opts.accepts && !this.#opts.accepts(target)) return this.#refuse(stream, 'target', peer, headers)
    this.#opts.dial(target, peer).then(
      (upstream) => this.#tunnel(stream, upstream, { peer, target, headers, bytesIn: 0, bytesOut: 0 }),
      (err: Error) => this.#refuse(stream, 'dial', peer, headers, err),
    )
  }

  #refuse(stream: ServerHttp2Stream, why: HboneRefusal, peer: HbonePeer, headers: IncomingHttpHeaders, err?: Error): void {
    this.counters.refused[why]++
    this.#opts.log?.info(
      { peer: peer.identity, src: peer.address, method: headers[':method'], authority: headers[':authority'], why, err: err?.message },
      'HBONE request refused',
    )
    if (stream.destroyed || stream.closed) return
    stream.respond({ ':status': refusalStatus[why] }, { endStream: true })
  }

  #tunnel(stream: ServerHttp2Stream, upstream: Duplex, t: HboneTunnel): void {
    if (stream.destroyed || stream.closed) {
      upstream.destroy() // the client gave up while we were connecting
      return
    }
    stream.respond({ ':status': 200 })
    this.counters.accepted++
    this.counters.active++
    this.emit('tunnel', t)
    splice(stream, upstream, (r) => {
      this.counters.active--
      t.bytesIn = r.toUpstream
      t.bytesOut = r.fromUpstream
      t.end = r.reset ? 'reset' : 'closed'
      if (r.reset) this.counters.reset++
      this.emit('tunnelClose', t)
    })
  }
}
