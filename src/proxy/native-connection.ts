// One captured connection relayed by the addon's engine (native/relay.c, --relay native): the twin of
// ProxiedConnection (connection.ts), publishing the same events with the same meanings. Node keeps the
// routing and the bookkeeping; the relay thread dials the upstream and moves the bytes, and reports back
// connected, failed, idle and closed (with byte counts and the termination as the node engine names it).
import type { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'
import { relayAbort, relayAdd, relayStart, relayStop, relayTcpInfo, type RelayBind, type RelayEvent } from '../native/relay.js'
import { socketFd } from '../native/sockopt.js'
import type { Logger } from '../logger.js'
import type { ListenerKind, Route } from './clusters.js'
import type { ProxyConfig } from './config.js'
import type { ConnectionContext } from './connection.js'
import { nextConnectionId, proxiedRecord, type ByteCounts, type ConnectionRecord } from './connection-record.js'
import { formatEndpoint, type Endpoint } from '../net/address.js'
import { fileLimits, relayPipesFor } from './fd-budget.js'
import type { LoopOwner, TrackedUpstream } from './loop-guard.js'
import { ResponseFlag, upstreamConnectFailed } from './response-flags.js'
import { TPROXY_MARK } from './transparent.js'

type PassthroughRoute = Extract<Route, { kind: 'passthrough' }>
type Closed = Extract<RelayEvent, { type: 'closed' }>

const ignore = () => {}

// One relay thread per process, started by the sidecar (or the first connection) with the settings both
// listeners share.
const owners = new Map<number, NativeConnection>()
let started = false

export function startNativeRelay(config: Pick<ProxyConfig, 'bufferLimitBytes' | 'connectTimeoutMs' | 'idleTimeoutMs'>): void {
  if (started) return
  relayStart(
    (events) => {
      for (const e of events) owners.get(e.id)?.onRelayEvent(e)
    },
    {
      bufferLimitBytes: config.bufferLimitBytes,
      connectTimeoutMs: config.connectTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      // the descriptors the budget sets aside for them (fd-budget.ts)
      maxPipes: relayPipesFor(fileLimits()?.soft ?? Number.POSITIVE_INFINITY),
    },
  )
  started = true
}

/** Stops the relay thread (the sidecar's exit; tests). Connections still open are closed without events. */
export function stopNativeRelay(): void {
  if (!started) return
  relayStop()
  started = false
  owners.clear()
}

export class NativeConnection implements LoopOwner {
  readonly id = nextConnectionId()
  readonly #ctx: ConnectionContext
  readonly #route: PassthroughRoute
  readonly #start = new Date()
  readonly #startMs = performance.now()
  readonly #log: Logger
  readonly #downstreamRemote: Endpoint | undefined
  #tracked: TrackedUpstream | undefined
  #closed = false
  #flags: readonly ResponseFlag[] = []
  #failureReason = ''
  /** relayAdd's answer: the upstream socket's address once connect(2) bound it */
  #local: Endpoint | undefined
  #upstreamLocal: Endpoint | undefined

  constructor(ctx: ConnectionContext, downstream: Socket, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#ctx = ctx
    this.#route = route
    this.#log = ctx.log
    this.#downstreamRemote = downstreamRemote
    ctx.events.opened({ id: this.id, disposition: 'proxied', cluster: route.cluster, serviceName: route.serviceName, flags: [] })
    downstream.on('error', ignore)
    let local: Endpoint
    try {
      startNativeRelay(ctx.config)
      local = relayAdd(this.id, socketFd(downstream), route.destination, this.#bind())
    } catch (err) {
      this.#addFailed(downstream, err as NodeJS.ErrnoException)
      return
    }
    this.#local = local
    owners.set(this.id, this)
    this.#tracked = this.#track(local)
    // The relay holds its own descriptor now. A plain destroy closes node's: resetAndDestroy's SO_LINGER
    // would act on the socket both descriptors share. (The closures made here live in methods of their own:
    // one sharing the constructor's scope would keep the destroyed Socket alive with the connection.)
    downstream.destroy()
  }

  /**
   * A socket that could not be made or bound (EMFILE, EADDRNOTAVAIL, EPERM): node:net reports those as the
   * connect's error, and so does this engine. Nothing was relayed: a plain close of the client.
   */
  #addFailed(downstream: Socket, err: NodeJS.ErrnoException): void {
    this.#fail(`delayed_connect_error:_${-(err.errno ?? 0) || err.code}`, false, err.code)
    this.#log.debug({ err, dst: formatEndpoint(this.#route.destination) }, 'upstream connect failed')
    downstream.once('close', () => this.#finish({ rx: 0, tx: 0 }, { rx: 0, tx: 0 }, ''))
    downstream.destroy()
  }

  /**
   * The loop guard's rule 3 for this engine: the relay thread completes connects on its own clock, so its
   * 'connected' event can reach this thread any number of turns later, and an app connection that NAT gave
   * this upstream's port would pass for a loop all that while (seen: 2 of 20,000 in the NAT-clash fault
   * test). A looped hop needs no such wait: the kernel completes its handshake with our own listener during
   * connect(2) itself, so it is in the accept queue at the next poll. The upstream counts as "connecting"
   * from relayAdd through the next turn's poll phase (cleared in that turn's check phase).
   */
  #track(local: Endpoint): TrackedUpstream {
    let fresh = true
    setImmediate(() => setImmediate(() => (fresh = false)))
    const id = this.id
    const closed = () => this.#closed
    const probe = {
      get connecting() {
        return fresh && !closed()
      },
      tcpInfo: () => relayTcpInfo(id),
    }
    return this.#ctx.loopGuard.trackUpstream(local, this.#route.destination, probe, this)
  }

  /** The upstream's source: 127.0.0.6 / ::6 inbound, the client's own address in TPROXY mode. */
  #bind(): RelayBind {
    const config = this.#ctx.config
    const client = this.#downstreamRemote
    if (this.#ctx.kind !== 'inbound') return {}
    if (config.interceptionMode === 'TPROXY' && client) return { address: client.address, transparent: true, mark: TPROXY_MARK }
    return { address: this.#route.destination.family === 6 ? config.inboundSourceV6 : config.inboundSourceV4 }
  }

  onRelayEvent(e: RelayEvent): void {
    const cluster = this.#route.cluster
    switch (e.type) {
      case 'connected':
        // not tracked.connected(): the event's turn says nothing about when the kernel connected (above)
        this.#upstreamLocal = this.#local
        this.#ctx.events.connected({ id: this.id, cluster, upstreamLocal: this.#upstreamLocal })
        break
      case 'failed': {
        const code = e.timeout ? undefined : getSystemErrorName(-e.errno)
        this.#fail(e.timeout ? 'connect_timeout' : `delayed_connect_error:_${e.errno}`, e.timeout, code)
        this.#log.debug({ errno: e.errno, code, dst: formatEndpoint(this.#route.destination) }, 'upstream connect failed')
        break
      }
      case 'idle':
        this.#ctx.events.idleTimeout({ id: this.id, cluster })
        break
      case 'flow': {
        const flow = this.#ctx.flow(cluster)
        if (e.paused) flow.paused.inc(e.paused)
        if (e.resumed) flow.resumed.inc(e.resumed)
        break
      }
      case 'closed':
        this.#onClosed(e)
        break
    }
  }

  #fail(reason: string, timeout: boolean, code: string | undefined): void {
    this.#ctx.events.failed({ id: this.id, cluster: this.#route.cluster, reason, timeout, ...(code ? { code } : {}) })
    this.#flags = upstreamConnectFailed
    this.#failureReason = reason
  }

  get listenerKind(): ListenerKind {
    return this.#ctx.kind
  }

  onUpstreamLooped(): void {
    this.#flags = [ResponseFlag.UpstreamConnectionFailure]
    if (!this.#closed) relayAbort(this.id, 'looped')
  }

  /** Resets both sides now (end of drain). */
  abort(): void {
    if (!this.#closed && owners.has(this.id)) relayAbort(this.id, 'reset')
  }

  #onClosed(e: Closed): void {
    owners.delete(this.id)
    this.#tracked?.closed()
    this.#finish({ rx: e.downstreamRx, tx: e.downstreamTx }, { rx: e.upstreamRx, tx: e.upstreamTx }, e.termination)
  }

  #finish(downstream: ByteCounts, upstream: ByteCounts, termination: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#ctx.events.closed(this.#record(downstream, upstream, termination))
  }

  #record(downstream: ByteCounts, upstream: ByteCounts, termination: string): ConnectionRecord {
    return proxiedRecord({
      id: this.id,
      startTime: this.#start,
      startMs: this.#startMs,
      route: this.#route,
      flags: this.#flags,
      terminationDetails: termination,
      failureReason: this.#failureReason,
      downstreamRemote: this.#downstreamRemote,
      upstreamLocal: this.#upstreamLocal,
      downstream,
      upstream,
    })
  }
}
