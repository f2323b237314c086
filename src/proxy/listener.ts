// A virtual listener (virtualOutbound on 15001, virtualInbound on 15006): accepts captured connections,
// recovers their original destination, guards against loops and hands them to a cluster.
import { createServer, type Server, type Socket } from 'node:net'
import { listenFailure } from '../errors.js'
import type { Logger } from '../logger.js'
import type { AccessLogSink } from './access-log.js'
import { listenerNames, route, type ListenerKind, type RouterOptions } from './clusters.js'
import type { ProxyConfig } from './config.js'
import { ProxiedConnection } from './engines/node.js'
import type { ConnectionContext, InpodSockets, PassthroughRoute } from './engines/ledger.js'
import { NativeConnection } from './engines/native.js'
import { StatsObserver } from './connection-observer.js'
import { ConnectionChannel, nextConnectionId, type ConnectionRecord } from './engines/record.js'
import { endpoint, formatEndpoint, type Endpoint } from '../net/address.js'
import { isFdExhaustion, type FdBudget } from './fd-budget.js'
import type { LoopGuard, LoopOwner } from './loop-guard.js'
import { MisdirectedLog } from './misdirected.js'
import { listenTransparent } from './transparent.js'
import { netnsSocket } from '../native/netns.js'
import {
  acceptorStop,
  FdDownstream,
  SocketDownstream,
  takeOverListener,
  type AcceptEntry,
  type AcceptorHandle,
  type Downstream,
} from './native-accept.js'
import type { FlowCounters } from './engines/node-relay.js'
import { ResponseFlag } from './response-flags.js'
import type { Stats } from '../stats/stats.js'

/** Recovers an accepted connection's original destination; undefined when it was not redirected. */
export type DestinationSource = (downstream: Downstream, log: Logger) => Endpoint | undefined

/** SO_ORIGINAL_DST: where the connection was headed before the REDIRECT rule sent it to the listener. */
export function originalDestination(downstream: Downstream, log: Logger): Endpoint | undefined {
  try {
    return downstream.originalDst() as Endpoint | undefined
  } catch (err) {
    log.warn({ err }, 'SO_ORIGINAL_DST failed')
    return undefined
  }
}

/** TPROXY does not NAT: what the client dialled is the accepted socket's own local address. */
export function transparentDestination(downstream: Downstream, log: Logger): Endpoint | undefined {
  return originalDestination(downstream, log) ?? downstream.local()
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
  /** how an accepted connection's original destination is recovered (tests route loopback without NAT) */
  destination?: DestinationSource
  /** direct connections and loops, counted and logged once per burst for both listeners (one of its own if not given) */
  misdirected?: MisdirectedLog
  /** ambient mode: listen, and dial upstreams, inside this pod's network namespace (src/ambient/) */
  inpod?: InpodSockets
  /**
   * ambient mode: takes a routed connection away from the relay engines (HBONE to a mesh peer,
   * src/ambient/hbone-outbound.ts); null leaves it to them. Its connection publishes on ctx.events as theirs do.
   */
  divert?: (ctx: ConnectionContext, socket: Socket, route: PassthroughRoute, remote: Endpoint | undefined) => ActiveConnection | null
}

/** A connection the listener holds until it closes: either engine's, or a diverted one. */
export interface ActiveConnection extends LoopOwner {
  readonly id: number
  abort(): void
}

/** The process's identity for the loop advice, read when a loop is logged (the proxy drops root after start). */
export function identityOf(config: Pick<ProxyConfig, 'interceptionMode'>) {
  return () => ({ mode: config.interceptionMode, uid: process.getuid?.(), gid: process.getgid?.() })
}

export class VirtualListener implements ConnectionContext {
  readonly kind: ListenerKind
  readonly config: ProxyConfig
  readonly log: Logger
  readonly loopGuard: LoopGuard
  readonly inpod: InpodSockets | undefined
  /** every connection's lifecycle; the statistics and access log subscribe first, anyone else may */
  readonly events = new ConnectionChannel()
  readonly #deps: ListenerDeps
  readonly #server: Server
  readonly #port: number
  readonly #observer: StatsObserver
  readonly #destination: DestinationSource
  readonly #misdirected: MisdirectedLog
  readonly #active = new Map<number, ActiveConnection>()
  readonly #refused = new Set<Downstream>()
  /** the native engine's acceptor (native-accept.ts), which takes over from #server once it listens */
  #acceptor: AcceptorHandle | undefined
  #idleWaiters: (() => void)[] = []

  constructor(kind: ListenerKind, deps: ListenerDeps) {
    this.kind = kind
    this.config = deps.config
    this.loopGuard = deps.loopGuard
    this.inpod = deps.inpod
    this.#deps = deps
    this.#destination =
      deps.destination ?? (kind === 'inbound' && deps.config.interceptionMode === 'TPROXY' ? transparentDestination : originalDestination)
    this.#port = kind === 'outbound' ? deps.config.outboundPort : deps.config.inboundPort
    this.log = deps.log.child({ listener: listenerNames[kind], port: this.#port })
    this.#misdirected = deps.misdirected ?? new MisdirectedLog(deps.log, deps.stats, identityOf(deps.config))
    this.#observer = new StatsObserver({
      kind,
      stats: deps.stats,
      bindAddress: deps.config.bindAddress,
      port: this.#port,
      accessLog: deps.accessLog,
    })
    this.events.subscribe(this.#observer)
    // The listener's own bookkeeping: descriptors, the active set, the drain's idle waiters.
    this.events.subscribe({
      failed: (e) => {
        if (isFdExhaustion(e)) deps.fdBudget.exhausted(this.name, e)
      },
      closed: (r) => this.#closed(r),
    })
    this.#server = createServer(
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: deps.config.bufferLimitBytes },
      (socket) => this.#accept(new SocketDownstream(socket)),
    )
    this.#server.maxConnections = deps.config.maxConnections
    this.#server.on('drop', () => this.#observer.overflow())
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
    return this.#acceptor !== undefined || this.#server.listening
  }

  /**
   * The native engine accepts in C (native/acceptor.c), without a node:net Socket per connection (issue 18).
   * Not under ambient's divert: the ztunnel's HBONE connections need node:net sockets.
   */
  get #acceptsNatively(): boolean {
    return this.config.relay === 'native' && !this.#deps.divert
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(listenFailure(this.name, this.config.bindAddress, this.#port, err))
      this.#server.once('error', onError)
      const ready = () => {
        this.#server.off('error', onError)
        if (this.#acceptsNatively) {
          try {
            this.#acceptor = takeOverListener(this.#server, (entries) => this.#onBatch(entries), this.#deps.fdBudget.available)
          } catch (err) {
            return reject(listenFailure(this.name, this.config.bindAddress, this.#port, err as NodeJS.ErrnoException))
          }
        }
        // libuv absorbs accept()'s EMFILE itself (fd-budget.ts); should it pass one on, it is no listener fault.
        this.#server.on('error', (err: NodeJS.ErrnoException) => {
          if (isFdExhaustion(err)) this.#fdExhausted(err)
          else this.log.error({ err }, 'listener error')
        })
        this.#deps.fdBudget.measure()
        resolve()
      }
      if (this.inpod) {
        try {
          const fd = netnsSocket({ ...this.#inpodSocket(), listen: 4096 })
          this.#server.listen({ fd }, ready)
        } catch (err) {
          reject(listenFailure(this.name, this.config.bindAddress, this.#port, err as NodeJS.ErrnoException))
        }
        return
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

  /**
   * The listening socket's options in the pod's namespace: marked, as every socket a ztunnel makes there, and
   * SO_REUSEADDR (as libuv sets it on the listeners it binds), so a ztunnel started again binds its ports while
   * the last one's connections are in TIME_WAIT.
   */
  #inpodSocket() {
    const pod = this.inpod!
    const family = this.config.bindAddress.includes(':') ? 6 : 4
    return {
      netns: pod.netns,
      family,
      type: 'tcp',
      address: this.config.bindAddress,
      port: this.#port,
      mark: pod.mark,
      reuseAddr: true,
    } as const
  }

  /** Stops accepting; open connections go on. */
  stopAccepting(): Promise<void> {
    this.#misdirected.flush()
    if (this.#acceptor) {
      acceptorStop(this.#acceptor)
      this.#acceptor = undefined
      return Promise.resolve()
    }
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
    for (const conn of this.#active.values()) conn.abort()
    for (const d of this.#refused) d.abort()
  }

  flow(cluster: string): FlowCounters {
    return this.#observer.flow(cluster)
  }

  /** One round of the native acceptor: the connections in the order the kernel queued them. */
  #onBatch(entries: AcceptEntry[]): void {
    for (const e of entries) {
      if ('error' in e) this.#fdExhausted(e.error)
      else this.#accept(new FdDownstream(e))
    }
  }

  #accept(downstream: Downstream): void {
    const native = this.config.relay === 'native'
    // node:net's maxConnections counts its own sockets; the native engine's connections have none left, so
    // the listener counts them, and drops an excess one as node:net does (a plain close, 'drop').
    if (native && this.#active.size >= this.config.maxConnections) {
      this.#observer.overflow()
      return downstream.close(false)
    }
    // Two descriptors per connection (downstream and upstream), taken here and given back at close.
    if (!this.#deps.fdBudget.take(2)) return this.#refuseOverBudget(downstream)
    const remote = endpoint(downstream.remoteAddress, downstream.remotePort)
    const dst = this.#destination(downstream, this.log)
    // Routed first: a connection that is closed here dials nothing, so it cannot be a loop, whoever sent it.
    const r = route(this.kind, dst, this.#deps.router)
    if (r.kind === 'blackhole') {
      if (r.reason === 'destination_is_proxy_listener' && dst) this.#misdirected.direct({ listener: this.name, remote, dst })
      else
        this.log.debug({ src: formatEndpoint(remote), dst: formatEndpoint(dst), reason: r.reason }, 'connection sent to BlackHoleCluster')
      return this.#closeUnproxied(downstream, { disposition: 'blackholed', remote, dst, flags: [r.flags], details: r.reason, reset: false })
    }
    const loop = this.loopGuard.verdict(downstream.remoteAddress, downstream.remotePort, dst, () => downstream.tcpInfo())
    if (loop.kind === 'loop') return this.#refuseLoop(downstream, remote, loop.chain)
    const conn = this.#connection(downstream, r, remote)
    this.#active.set(conn.id, conn)
    if (loop.kind === 'suspect') this.loopGuard.suspected(conn, loop.of)
  }

  #connection(downstream: Downstream, r: PassthroughRoute, remote: Endpoint | undefined): ActiveConnection {
    // The acceptor's fd goes to the relay as it is.
    if (downstream instanceof FdDownstream) return new NativeConnection(this, downstream.fd, r, remote)
    const socket = (downstream as SocketDownstream).socket
    // The native engine takes the socket's fd: node:net never read it (pauseOnConnect).
    return (
      this.#deps.divert?.(this, socket, r, remote) ??
      (this.config.relay === 'native' ? new NativeConnection(this, socket, r, remote) : new ProxiedConnection(this, socket, r, remote))
    )
  }

  #refuseOverBudget(downstream: Downstream): void {
    const budget = this.#deps.fdBudget
    budget.hold(1)
    this.#observer.globalOverflow()
    budget.overflow(this.name)
    this.#refused.add(downstream)
    downstream.close(false, () => {
      budget.release(1)
      this.#refused.delete(downstream)
      this.#checkIdle()
    })
  }

  #fdExhausted(err: NodeJS.ErrnoException): void {
    this.#observer.fdExhausted()
    this.#deps.fdBudget.exhausted(this.name, err)
  }

  /** chain: the connection that opened the loop (whose listener the advice names), then the suspect. */
  #refuseLoop(downstream: Downstream, remote: Endpoint | undefined, chain: readonly LoopOwner[]): void {
    this.#misdirected.loop({ listener: this.name, port: this.#port, remote, from: chain[0]!.listenerKind })
    for (const owner of chain) owner.onUpstreamLooped()
    const flags = [ResponseFlag.NoRouteFound]
    this.#closeUnproxied(downstream, { disposition: 'looped', remote, dst: undefined, flags, details: 'upstream_loop', reset: true })
  }

  /** A connection closed without an upstream (BlackHoleCluster): opened and closed with one record. */
  #closeUnproxied(downstream: Downstream, c: Unproxied): void {
    const id = nextConnectionId()
    const start = new Date()
    // Read before the close below: a closed socket no longer reports its local address.
    const local = c.dst ?? downstream.local()
    this.events.opened({ id, disposition: c.disposition, cluster: 'BlackHoleCluster', serviceName: 'unknown', flags: c.flags })
    this.#refused.add(downstream)
    downstream.close(c.reset, () => {
      this.#refused.delete(downstream)
      this.events.closed({
        id,
        disposition: c.disposition,
        startTime: start,
        durationMs: Date.now() - start.getTime(),
        cluster: 'BlackHoleCluster',
        serviceName: 'unknown',
        flags: c.flags,
        terminationDetails: c.details,
        failureReason: '',
        downstreamRemote: c.remote,
        downstreamLocal: local,
        downstream: { rx: 0, tx: 0 },
      })
    })
  }

  #closed(r: ConnectionRecord): void {
    this.#active.delete(r.id)
    this.#deps.fdBudget.release(2)
    this.#checkIdle()
  }

  #checkIdle(): void {
    if (this.#active.size > 0 || this.#refused.size > 0 || this.#idleWaiters.length === 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }
}

interface Unproxied {
  disposition: 'blackholed' | 'looped'
  remote: Endpoint | undefined
  dst: Endpoint | undefined
  flags: ResponseFlag[]
  details: string
  reset: boolean
}
