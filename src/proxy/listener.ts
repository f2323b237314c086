// A virtual listener (virtualOutbound on 15001, virtualInbound on 15006): accepts captured connections,
// recovers their original destination, guards against loops and hands them to a cluster.
import { createServer, type Server, type Socket } from 'node:net'
import { ListenError } from '../errors.js'
import type { Logger } from '../logger.js'
import { originalDst } from '../native/sockopt.js'
import type { AccessLogEntry, AccessLogSink } from './access-log.js'
import { listenerNames, route, type ListenerKind, type RouterOptions } from './clusters.js'
import type { ProxyConfig } from './config.js'
import { ProxiedConnection } from './connection.js'
import { endpoint, formatEndpoint, type Endpoint } from './endpoint.js'
import { isFdExhaustion, type FdBudget } from './fd-budget.js'
import type { LoopGuard } from './loop-guard.js'
import { listenTransparent } from './transparent.js'
import { StatHandles, type ClusterStats, type IstioTcp, type TcpStats } from './listener-stats.js'
import { listenerStatPrefix, type Counter, type Gauge, type Histogram, type Stats } from './stats.js'

/** What a connection needs from its listener; keeps connection.ts free of server plumbing. */
export interface ListenerContext {
  kind: ListenerKind
  config: ProxyConfig
  log: Logger
  loopGuard: LoopGuard
  cluster(name: string): ClusterStats
  tcp(statPrefix: string): TcpStats
  inboundSource(family: 4 | 6): string
  /** a socket failed with EMFILE/ENFILE: counted and warned once per burst */
  fdExhausted(err: NodeJS.ErrnoException): void
  connectionClosed(conn: ProxiedConnection, entry: AccessLogEntry): void
}

/** The start-up error for a port that cannot be bound, naming what wanted it (also used by the admin servers). */
export function listenFailure(name: string, host: string, port: number, err: NodeJS.ErrnoException): ListenError {
  const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EACCES' ? 'needs privileges' : err.message
  return new ListenError(`${name}: cannot listen on ${host} port ${port}: it ${why}`, err)
}

export interface ListenerDeps {
  config: ProxyConfig
  stats: Stats
  log: Logger
  loopGuard: LoopGuard
  accessLog: AccessLogSink
  router: RouterOptions
  /** the process's file descriptors, shared by both listeners */
  fdBudget: FdBudget
}

export class VirtualListener implements ListenerContext {
  readonly kind: ListenerKind
  readonly config: ProxyConfig
  readonly log: Logger
  readonly loopGuard: LoopGuard
  readonly #deps: ListenerDeps
  readonly #server: Server
  readonly #port: number
  readonly #active = new Set<ProxiedConnection>()
  readonly #refused = new Set<Socket>()
  readonly #cx: {
    total: Counter
    destroy: Counter
    active: Gauge
    overflow: Counter
    globalOverflow: Counter
    fdExhausted: Counter
    length: Histogram
    noFilterChain: Counter
  }
  readonly #handles: StatHandles
  #idleWaiters: (() => void)[] = []

  constructor(kind: ListenerKind, deps: ListenerDeps) {
    this.kind = kind
    this.config = deps.config
    this.loopGuard = deps.loopGuard
    this.#deps = deps
    this.#port = kind === 'outbound' ? deps.config.outboundPort : deps.config.inboundPort
    this.log = deps.log.child({ listener: listenerNames[kind], port: this.#port })
    this.#handles = new StatHandles(deps.stats, kind)
    const prefix = listenerStatPrefix(deps.config.bindAddress, this.#port)
    const s = deps.stats
    this.#cx = {
      total: s.counter(`${prefix}.downstream_cx_total`),
      destroy: s.counter(`${prefix}.downstream_cx_destroy`),
      active: s.gauge(`${prefix}.downstream_cx_active`),
      overflow: s.counter(`${prefix}.downstream_cx_overflow`),
      globalOverflow: s.counter(`${prefix}.downstream_global_cx_overflow`),
      // our own name: Envoy has no counter for sockets refused with EMFILE/ENFILE
      fdExhausted: s.counter('sidecar.fd_exhausted'),
      length: s.histogram(`${prefix}.downstream_cx_length_ms`),
      noFilterChain: s.counter(`${prefix}.no_filter_chain_match`),
    }
    this.#server = createServer(
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: deps.config.bufferLimitBytes },
      (socket) => this.#accept(socket),
    )
    this.#server.maxConnections = deps.config.maxConnections
    this.#server.on('drop', () => this.#cx.overflow.inc())
  }

  get name(): string {
    return listenerNames[this.kind]
  }

  /** virtualInbound in TPROXY mode: a transparent listener, and upstream connections from the client's address */
  get #transparent(): boolean {
    return this.kind === 'inbound' && this.config.interceptionMode === 'TPROXY'
  }

  get port(): number {
    return this.#port
  }

  get activeConnections(): number {
    return this.#active.size
  }

  get listening(): boolean {
    return this.#server.listening
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenFailure(this.name, this.config.bindAddress, this.#port, err))
      this.#server.once('error', onError)
      const ready = () => {
        this.#server.off('error', onError)
        // libuv absorbs accept()'s EMFILE itself (fd-budget.ts); should it pass one on, it is no listener fault.
        this.#server.on('error', (err: NodeJS.ErrnoException) => {
          if (isFdExhaustion(err)) this.fdExhausted(err)
          else this.log.error({ err }, 'listener error')
        })
        this.#deps.fdBudget.measure()
        resolve()
      }
      if (this.#transparent) {
        try {
          listenTransparent(this.#server, this.config.bindAddress, this.#port, 4096, ready)
        } catch (err) {
          reject(err)
        }
        return
      }
      this.#server.listen({ host: this.config.bindAddress, port: this.#port, ipv6Only: false, backlog: 4096 }, ready)
    })
  }

  /** Stops accepting; open connections go on. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve()
      this.#server.close(() => resolve())
      // server.close's callback waits for connections; resolve as soon as the socket stopped listening.
      setImmediate(resolve)
    })
  }

  /** Resolves when no connection is active. */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  abortAll(): void {
    for (const conn of this.#active) conn.abort()
    for (const socket of this.#refused) socket.destroy()
  }

  #accept(socket: Socket): void {
    // Two descriptors per connection (downstream and upstream), taken here and given back at close.
    if (!this.#deps.fdBudget.take(2)) return this.#refuseOverBudget(socket)
    this.#cx.total.inc()
    this.#cx.active.inc()
    const remote = endpoint(socket.remoteAddress, socket.remotePort)
    let dst: Endpoint | undefined
    try {
      // undefined when not redirected; TPROXY does not NAT: what the client dialled is the socket's local address.
      dst = originalDst(socket) ?? (this.#transparent ? endpoint(socket.localAddress, socket.localPort) : undefined)
    } catch (err) {
      this.log.warn({ err }, 'SO_ORIGINAL_DST failed')
    }
    const looped = this.loopGuard.ownerOf(socket.remoteAddress, socket.remotePort, dst)
    if (looped) return this.#refuseLoop(socket, remote, looped)
    const r = route(this.kind, dst, this.#deps.router)
    this.istio(r.cluster, r.kind === 'passthrough' ? r.serviceName : 'unknown', '-').opened.inc()
    if (r.kind === 'blackhole') return this.#blackhole(socket, remote, dst, r.flags, r.reason)
    this.tcp(r.cluster).downstreamCxTotal.inc()
    this.#active.add(new ProxiedConnection(this, socket, r, remote))
  }

  #refuseOverBudget(socket: Socket): void {
    const budget = this.#deps.fdBudget
    budget.hold(1)
    this.#cx.globalOverflow.inc()
    budget.overflow(this.name)
    this.#refused.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => {
      budget.release(1)
      this.#refused.delete(socket)
      this.#checkIdle()
    })
    socket.destroy()
  }

  fdExhausted(err: NodeJS.ErrnoException): void {
    this.#cx.fdExhausted.inc()
    this.#deps.fdBudget.exhausted(this.name, err)
  }

  #blackhole(socket: Socket, remote: Endpoint | undefined, dst: Endpoint | undefined, flags: string, reason: string): void {
    if (flags === 'NR') this.#cx.noFilterChain.inc()
    this.tcp('BlackHoleCluster').downstreamCxNoRoute.inc()
    this.log.debug({ src: formatEndpoint(remote), dst: formatEndpoint(dst), reason }, 'connection sent to BlackHoleCluster')
    this.#closeUnproxied(socket, remote, dst, flags, reason)
  }

  #refuseLoop(socket: Socket, remote: Endpoint | undefined, owner: { onUpstreamLooped(): void }): void {
    const uid = process.getuid?.()
    const gid = process.getgid?.()
    this.log.error(
      { src: formatEndpoint(remote), uid, gid },
      `traffic loop: the proxy's own upstream connection from ${formatEndpoint(remote)} was captured back into ` +
        `${this.name} (port ${this.#port}), so the capture rules do not exempt this process (uid ${uid}, gid ${gid}). ` +
        `Fix: run the proxy as the uid the rules exempt (start it as root with --uid 1337, the default), or ` +
        `generate the rules with that uid in -u/--proxy-uid (or its gid in -g/--proxy-gid). Connection refused.`,
    )
    owner.onUpstreamLooped()
    this.istio('BlackHoleCluster', 'unknown', '-').opened.inc()
    this.#closeUnproxied(socket, remote, undefined, 'NR', 'upstream_loop', true)
  }

  #closeUnproxied(socket: Socket, remote: Endpoint | undefined, dst: Endpoint | undefined, flags: string, details: string, reset = false): void {
    const start = new Date()
    // Read before the destroy below: a destroyed socket no longer reports its local address.
    const local = dst ?? endpoint(socket.localAddress, socket.localPort)
    this.#refused.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => {
      this.#deps.fdBudget.release(2)
      this.#refused.delete(socket)
      this.#cx.active.dec()
      this.#cx.destroy.inc()
      this.#cx.length.record(Date.now() - start.getTime())
      this.istio('BlackHoleCluster', 'unknown', flags).closed.inc()
      this.#deps.accessLog.write({
        startTime: start,
        responseFlags: flags,
        connectionTerminationDetails: details,
        upstreamTransportFailureReason: '',
        bytesReceived: 0,
        bytesSent: 0,
        durationMs: Date.now() - start.getTime(),
        upstreamHost: '-',
        upstreamCluster: 'BlackHoleCluster',
        upstreamLocalAddress: '-',
        downstreamLocalAddress: formatEndpoint(local),
        downstreamRemoteAddress: formatEndpoint(remote),
      })
      this.#checkIdle()
    })
    if (reset) socket.resetAndDestroy()
    else socket.destroy()
  }

  connectionClosed(conn: ProxiedConnection, entry: AccessLogEntry): void {
    this.#active.delete(conn)
    this.#deps.fdBudget.release(2)
    this.#cx.active.dec()
    this.#cx.destroy.inc()
    this.#cx.length.record(entry.durationMs)
    const cluster = this.cluster(conn.cluster)
    const up = conn.upstreamBytes
    cluster.upstreamCxRxBytesTotal.inc(up.rx)
    cluster.upstreamCxTxBytesTotal.inc(up.tx)
    const tcp = this.tcp(conn.cluster)
    tcp.downstreamCxRxBytesTotal.inc(entry.bytesReceived)
    tcp.downstreamCxTxBytesTotal.inc(entry.bytesSent)
    const istio = this.istio(conn.cluster, conn.serviceName, entry.responseFlags || '-')
    istio.closed.inc()
    istio.sent.inc(entry.bytesSent)
    istio.received.inc(entry.bytesReceived)
    this.#deps.accessLog.write(entry)
    this.#checkIdle()
  }

  #checkIdle(): void {
    if (this.#active.size > 0 || this.#refused.size > 0 || this.#idleWaiters.length === 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

  cluster(name: string): ClusterStats {
    return this.#handles.cluster(name)
  }

  tcp(statPrefix: string): TcpStats {
    return this.#handles.tcp(statPrefix)
  }

  istio(cluster: string, service: string, flags: string): IstioTcp {
    return this.#handles.istio(cluster, service, flags)
  }

  inboundSource(family: 4 | 6): string {
    return family === 6 ? this.config.inboundSourceV6 : this.config.inboundSourceV4
  }
}
