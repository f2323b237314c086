// The HBONE client side of the ztunnel (ztunnel's src/proxy/outbound.rs, src/proxy/h2/client.rs): mutual TLS
// 1.3 with the pod's own certificate, ALPN h2, the server's certificate checked against the mesh CA and its
// URI SAN against the identity expected for the destination (src/tls: "peer did not present the expected
// SAN"), then an HTTP/2 CONNECT with :authority = the target and ztunnel's headers (baggage, forwarded,
// traceparent; create_hbone_request). Only a 200 opens the tunnel. Sessions are pooled (pool.ts).
import { connect as h2connect, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2'
import type { Socket } from 'node:net'
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import type { Logger } from '../../logger.js'
import {
  type Baggage,
  baggageHeader,
  formatAuthority,
  HBONE_LIMITS,
  HBONE_TLS,
  HboneError,
  type HboneFailure,
  type HboneIdentity,
  type HostPort,
  identityOfPem,
  newTraceparent,
  spiffeIds,
} from './common.js'
import { type PoolKey, type PooledSession, SessionPool } from './pool.js'

export interface HboneClientOptions {
  identity: HboneIdentity
  /** tunnels per session before another is opened; default ztunnel's POOL_MAX_STREAMS_PER_CONNECTION, 100 */
  maxStreamsPerSession?: number
  /** a session without tunnels is closed after this; default ztunnel's POOL_UNUSED_RELEASE_TIMEOUT, 5 min */
  idleSessionMs?: number
  /** makes the TCP connection to a peer's 15008 (e.g. from inside a pod's netns); default net.connect */
  socketFactory?(via: HostPort): Socket
  /** about the source workload, sent as baggage on every CONNECT */
  baggage?: Baggage
  /** HTTP/2 PING each session this long after it opened and after each answer; default ztunnel's 10 s */
  pingIntervalMs?: number
  /** a session whose PING is not answered in this long is closed, its tunnels reset; default ztunnel's 20 s */
  pingTimeoutMs?: number
  log?: Logger
}

export interface HboneConnectOptions {
  /** the :authority: the destination pod's address and the app's port */
  target: HostPort
  /** where to send it: the destination pod's 15008 */
  via: HostPort
  /** the spiffe:// identity the server's certificate must carry */
  expectIdentity: string
  /** the original client (forwarded: for="…", and part of the pool key as ztunnel spoofs it) */
  source?: HostPort
  /** more request headers, or ones replacing ours */
  headers?: OutgoingHttpHeaders
}

export interface HboneClientCounters {
  sessionsOpened: number
  /** sessions closed because a PING went unanswered */
  pingTimeouts: number
  /** CONNECTs answered 200 */
  tunnels: number
  failures: Record<HboneFailure, number>
}

export class HboneClient {
  /** this client's SPIFFE identity, from its certificate */
  readonly identity: string
  readonly counters: HboneClientCounters = {
    sessionsOpened: 0,
    pingTimeouts: 0,
    tunnels: 0,
    failures: { tls: 0, identity: 0, alpn: 0, status: 0, session: 0, certificate: 0 },
  }
  readonly #opts: HboneClientOptions
  readonly #pool: SessionPool

  constructor(opts: HboneClientOptions) {
    this.#opts = opts
    this.identity = identityOfPem(opts.identity.cert)
    const max = opts.maxStreamsPerSession ?? HBONE_LIMITS.clientMaxStreamsPerSession
    this.#pool = new SessionPool((key) => this.#openSession(key), max, opts.idleSessionMs ?? HBONE_LIMITS.idleSessionMs)
  }

  /** Sessions pooled now (opening or open). */
  get sessions(): number {
    return this.#pool.size
  }

  /** The pooled sessions, each with its key and tunnels. */
  pooled(): PooledSession[] {
    return this.#pool.sessions()
  }

  /** Opens a tunnel; resolves with its stream once the server answered 200. */
  async connect(o: HboneConnectOptions): Promise<ClientHttp2Stream> {
    const key: PoolKey = {
      source: this.identity,
      destination: o.expectIdentity,
      via: formatAuthority(o.via),
      sourceAddress: o.source?.address ?? '',
    }
    const lease = this.#pool.checkout(key)
    try {
      const session = await lease.session
      const stream = await this.#request(session, o)
      stream.once('close', () => lease.release())
      this.counters.tunnels++
      return stream
    } catch (err) {
      lease.release()
      const e = err instanceof HboneError ? err : classify(err as NodeJS.ErrnoException, key.via)
      this.counters.failures[e.reason]++
      throw e
    }
  }

  /** Closes every session; open tunnels are reset. */
  close(): void {
    this.#pool.close()
  }

  #request(session: ClientHttp2Session, o: HboneConnectOptions): Promise<ClientHttp2Stream> {
    const headers: OutgoingHttpHeaders = {
      ':method': 'CONNECT',
      ':authority': formatAuthority(o.target),
      traceparent: newTraceparent(),
      ...(this.#opts.baggage ? { baggage: baggageHeader(this.#opts.baggage) } : {}),
      ...(o.source ? { forwarded: `for="${formatAuthority(o.source)}"` } : {}),
      ...o.headers,
    }
    return new Promise((resolve, reject) => {
      const stream = session.request(headers, { endStream: false })
      const timer = setTimeout(() => {
        stream.close()
        reject(new HboneError('session', `HBONE: no answer to CONNECT ${headers[':authority']} in ${HBONE_LIMITS.handshakeMs} ms`))
      }, HBONE_LIMITS.handshakeMs)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        reject(err)
      }
      stream.once('error', fail)
      // the session's own error (a TLS alert: our certificate refused) says more than the stream's close; it may come
      // just after
      stream.once('close', () =>
        setImmediate(() =>
          fail(
            sessionErrors.get(session)?.error ??
              new HboneError(
                'session',
                // a Node server refusing a certificate it cannot verify closes without an alert (a missing one gets one)
                `HBONE: the session closed before an answer to CONNECT ${headers[':authority']} (a server refusing our certificate does that)`,
              ),
          ),
        ),
      )
      stream.once('response', (h) => {
        clearTimeout(timer)
        stream.off('error', fail)
        const status = Number(h[':status'])
        if (status === 200) return resolve(stream)
        stream.close()
        reject(new HboneError('status', `HBONE: CONNECT ${headers[':authority']} answered ${status}`, { status }))
      })
    })
  }

  /**
   * ztunnel's keepalive: a PING every interval; one unanswered for the timeout (a peer that stopped reading, a
   * path that drops everything) ends the session, and its tunnels are reset instead of hanging.
   */
  #keepPinging(session: ClientHttp2Session, via: string): void {
    const interval = this.#opts.pingIntervalMs ?? HBONE_LIMITS.pingIntervalMs
    const timeout = this.#opts.pingTimeoutMs ?? HBONE_LIMITS.pingTimeoutMs
    let timer: NodeJS.Timeout
    const ping = (): void => {
      if (session.closed || session.destroyed) return
      const deadline = setTimeout(() => {
        this.counters.pingTimeouts++
        this.#opts.log?.warn(
          { via },
          `HBONE ping timeout: ${via} did not answer a PING in ${timeout} ms; its session and tunnels are closed`,
        )
        session.destroy(new HboneError('session', `HBONE: ${via} did not answer a PING in ${timeout} ms`))
      }, timeout)
      deadline.unref()
      const sent = session.ping((err) => {
        clearTimeout(deadline)
        if (!err) timer = setTimeout(ping, interval).unref()
      })
      if (!sent) clearTimeout(deadline)
    }
    timer = setTimeout(ping, interval).unref()
    session.once('close', () => clearTimeout(timer))
  }

  #openSession(key: PoolKey): Promise<ClientHttp2Session> {
    const { identity, socketFactory, log } = this.#opts
    const via = parseVia(key.via)
    this.counters.sessionsOpened++
    return new Promise((resolve, reject) => {
      let tls: TLSSocket | null = null
      const failure: { error?: Error } = {}
      const session = h2connect(`https://${key.via}`, {
        settings: { initialWindowSize: HBONE_LIMITS.streamWindow, maxFrameSize: HBONE_LIMITS.frameSize, enablePush: false },
        maxSessionMemory: 64,
        createConnection: () => {
          tls = tlsConnect({
            ...HBONE_TLS,
            cert: identity.cert,
            key: identity.key,
            ca: identity.ca,
            // no SNI: Istio clients send none (an IP is not allowed in SNI)
            ...(socketFactory ? { socket: socketFactory(via) } : { host: via.address, port: via.port }),
            checkServerIdentity: (_host: string, cert: PeerCertificate) => checkIdentity(cert, key.destination, key.via),
          })
          // an alert after our side finished the handshake (TLS 1.3: the server refusing our certificate)
          tls.on('error', (err) => (failure.error ??= err))
          return tls
        },
      })
      sessionErrors.set(session, failure)
      const timer = setTimeout(
        () => session.destroy(new HboneError('session', `HBONE: no TLS/HTTP2 session with ${key.via} in ${HBONE_LIMITS.handshakeMs} ms`)),
        HBONE_LIMITS.handshakeMs,
      )
      session.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      session.once('close', () => {
        clearTimeout(timer)
        reject(new HboneError('session', `HBONE: the session with ${key.via} closed`))
      })
      session.once('connect', () => {
        clearTimeout(timer)
        const alpn = (tls as TLSSocket | null)?.alpnProtocol
        if (alpn !== 'h2') {
          const err = new HboneError('alpn', `HBONE: ${key.via} did not agree on ALPN h2 (got ${alpn || 'none'})`)
          session.destroy(err)
          return reject(err)
        }
        // ztunnel's HTTP2_CONNECTION_WINDOW_SIZE; SETTINGS only carry the stream window
        session.setLocalWindowSize(HBONE_LIMITS.connectionWindow)
        session.on('error', (err) => {
          failure.error ??= err
          log?.debug({ err: err.message, via: key.via }, 'HBONE session error')
        })
        this.#keepPinging(session, key.via)
        resolve(session)
      })
    })
  }
}

/** The error that ended a session, for the tunnels that were waiting on it. */
const sessionErrors = new WeakMap<ClientHttp2Session, { error?: Error }>()

function parseVia(via: string): HostPort {
  const i = via.lastIndexOf(':')
  return { address: via.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(via.slice(i + 1)) }
}

function checkIdentity(cert: PeerCertificate, expected: string, via: string): Error | undefined {
  const got = cert.raw ? spiffeIds(new X509Certificate(cert.raw)) : []
  if (got.includes(expected)) return undefined
  return new HboneError(
    'identity',
    `HBONE: ${via} did not present the expected identity ${expected}, got ${got.length ? got.join(', ') : 'no spiffe:// URI SAN'}`,
  )
}

/** A Node error as an HboneError: OpenSSL's and certificate verification's are TLS failures. */
function classify(err: NodeJS.ErrnoException, via: string): HboneError {
  const code = err.code ?? ''
  const tls = code.startsWith('ERR_SSL') || /CERT|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO/.test(code)
  return new HboneError(tls ? 'tls' : 'session', `HBONE: ${tls ? 'TLS' : 'the session'} with ${via} failed: ${err.message}`, {
    cause: err,
  })
}
