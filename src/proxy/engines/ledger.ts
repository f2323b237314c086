// One proxied connection's account, kept the same way by both relay engines (node.ts on node:net,
// native.ts on the addon's relay thread): its id and times, the upstream's source, a failed
// connect, how the relay ended, and the one record it closes with. The engines report typed facts (a
// failure's errno, a close's kind and side); nameOutcome is the only place those become Envoy's names (the
// termination details, the failure reason, the response flags), so the access log's contract lives here.
import type { Logger } from '../../logger.js'
import type { ListenerKind, Route } from '../clusters.js'
import type { ProxyConfig } from '../config.js'
import { nextConnectionId, type ByteCounts, type ConnectionObserver, type ConnectionRecord } from './record.js'
import { formatEndpoint, type Endpoint } from '../../net/address.js'
import type { LoopGuard } from '../loop-guard.js'
import type { FlowCounters } from './node-relay.js'
import { ResponseFlag, upstreamConnectFailed } from '../response-flags.js'
import { TPROXY_MARK } from '../transparent.js'

export type PassthroughRoute = Extract<Route, { kind: 'passthrough' }>

/** What a connection needs from its listener. */
export interface ConnectionContext {
  kind: ListenerKind
  config: Pick<
    ProxyConfig,
    'bufferLimitBytes' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'inboundSourceV4' | 'inboundSourceV6' | 'interceptionMode'
  >
  log: Logger
  loopGuard: LoopGuard
  events: ConnectionObserver
  /** the relay's per-chunk counters for a cluster */
  flow(cluster: string): FlowCounters
  /** ambient mode: the pod whose namespace the ztunnel serves this listener in (src/ambient/) */
  inpod?: InpodSockets | undefined
}

/**
 * A pod the ztunnel serves from outside it: every socket it makes for the pod is made inside the pod's network
 * namespace (the addon enters it on a helper thread) and carries the pod's mark, 0x539 in Istio, which the
 * in-pod rules let through unredirected.
 */
export interface InpodSockets {
  /** an open descriptor of the pod's network namespace (/proc/PID/ns/net, /run/netns/NAME) */
  netns: number
  mark: number
}

/** Where the upstream socket leaves from (the native engine's RelayBind has this shape). */
export interface UpstreamSource {
  /** none: the kernel chooses */
  address?: string
  /** IP_TRANSPARENT before bind: the address (the client's) is not local */
  transparent?: boolean
  mark?: number
  /** made inside this network namespace (an open descriptor of it), not the process's own */
  netns?: number
}

/**
 * Inbound connections leave from 127.0.0.6 / ::6, or in TPROXY mode from the client's own address (a
 * transparent socket marked 1337, transparent.ts); outbound ones from wherever the kernel routes them.
 * A ztunnel's (ambient mode) leave from inside the pod, marked: outbound from the pod's own address, inbound
 * from the client's (spoofed, as in TPROXY mode), so the app sees its real caller.
 */
export function upstreamSource(
  ctx: Pick<ConnectionContext, 'kind' | 'config' | 'inpod'>,
  dst: Endpoint,
  client: Endpoint | undefined,
): UpstreamSource {
  const config = ctx.config
  const pod = ctx.inpod
  if (pod) {
    if (ctx.kind === 'inbound' && client) return { address: client.address, transparent: true, mark: pod.mark, netns: pod.netns }
    return { mark: pod.mark, netns: pod.netns }
  }
  if (ctx.kind !== 'inbound') return {}
  if (config.interceptionMode === 'TPROXY' && client) return { address: client.address, transparent: true, mark: TPROXY_MARK }
  return { address: dst.family === 6 ? config.inboundSourceV6 : config.inboundSourceV4 }
}

export type Side = 'downstream' | 'upstream'

/** How a relay ended, as either engine reports it. */
export type RelayClose =
  /** both FINs passed on, or a plain close after a failed connect */
  | { kind: 'clean' }
  | { kind: 'idle' }
  /** the loop guard closed a hop back into this proxy */
  | { kind: 'loop' }
  /** still open at the end of the drain */
  | { kind: 'drain' }
  /** the native engine went down and reset it (its byte counts went down with it) */
  | { kind: 'engine_down' }
  /** side failed (a reset, a failed write); code is its errno name ('ECONNRESET'), when it had one */
  | { kind: 'error'; side: Side; code: string | undefined }

/** A connect that never completed: the timeout, or an errno (positive; 0 when unknown, then code names it). */
export type ConnectFailure = { timeout: true } | { timeout: false; errno: number; code: string | undefined }

/** A socket error as a failed connect (node:net's errno is negative). */
export function connectFailure(err: NodeJS.ErrnoException): ConnectFailure {
  return { timeout: false, errno: -(err.errno ?? 0), code: err.code }
}

export interface Outcome {
  failure: ConnectFailure | undefined
  /** the loop guard found the upstream was this proxy */
  looped: boolean
  /** undefined: nothing ended it yet (a connection closed without a report ended normally) */
  close: RelayClose | undefined
}

export interface OutcomeNames {
  flags: readonly ResponseFlag[]
  /** Envoy's connection_termination_details */
  terminationDetails: string
  /** Envoy's upstream_transport_failure_reason */
  failureReason: string
}

/** The one naming of a connection's end, for both engines. */
export function nameOutcome(o: Outcome): OutcomeNames {
  const f = o.failure
  return {
    // a loop is a connect that reached the wrong peer: UF, without Envoy's retry flag
    flags: o.looped ? [ResponseFlag.UpstreamConnectionFailure] : f ? upstreamConnectFailed : [],
    terminationDetails: o.close ? termination(o.close) : '',
    failureReason: !f ? '' : f.timeout ? 'connect_timeout' : `delayed_connect_error:_${f.errno || f.code}`,
  }
}

function termination(c: RelayClose): string {
  switch (c.kind) {
    case 'clean':
      return ''
    case 'idle':
      return 'idle_timeout'
    case 'loop':
      return 'upstream_loop'
    case 'drain':
      return 'drain_timeout'
    case 'engine_down':
      return 'relay_engine_down'
    case 'error':
      return `${c.side}_${(c.code ?? 'error').toLowerCase()}`
  }
}

/** The ledger both engines keep for one proxied connection; it publishes the connection's events. */
export class ConnectionLedger {
  readonly id = nextConnectionId()
  readonly route: PassthroughRoute
  readonly #events: ConnectionObserver
  readonly #log: Logger
  /** epoch ms: the record's Date is made at close (a Date per open connection is ~100 bytes) */
  readonly #start = Date.now()
  readonly #startMs = performance.now()
  readonly #downstreamRemote: Endpoint | undefined
  #upstreamLocal: Endpoint | undefined
  #failure: ConnectFailure | undefined
  #looped = false
  #close: RelayClose | undefined
  #closed = false

  constructor(ctx: Pick<ConnectionContext, 'events' | 'log'>, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#events = ctx.events
    this.#log = ctx.log
    this.route = route
    this.#downstreamRemote = downstreamRemote
    this.#events.opened({ id: this.id, disposition: 'proxied', cluster: route.cluster, serviceName: route.serviceName, flags: [] })
  }

  get closed(): boolean {
    return this.#closed
  }

  connected(upstreamLocal: Endpoint | undefined): void {
    this.#upstreamLocal = upstreamLocal
    this.#events.connected({ id: this.id, cluster: this.route.cluster, upstreamLocal })
  }

  /** The upstream never connected. Nothing was relayed: the engine closes the client plainly. */
  failed(f: ConnectFailure, err?: Error): void {
    this.#failure = f
    this.#looped = false
    const reason = nameOutcome({ failure: f, looped: false, close: undefined }).failureReason
    const code = f.timeout ? undefined : f.code
    this.#events.failed({ id: this.id, cluster: this.route.cluster, reason, timeout: f.timeout, ...(code ? { code } : {}) })
    if (!f.timeout) {
      this.#log.debug(
        { ...(err ? { err } : { errno: f.errno, code }), dst: formatEndpoint(this.route.destination) },
        'upstream connect failed',
      )
    }
  }

  idleTimeout(): void {
    this.#events.idleTimeout({ id: this.id, cluster: this.route.cluster })
  }

  /** The loop guard's verdict; the engine closes the hop (its close is 'loop'). */
  looped(): void {
    this.#looped = true
  }

  /**
   * How the relay ended. The first report names it, except that an idle timeout or a loop names it whatever
   * came before: each ends the whole connection (the node engine learns of its sockets' errors one by one).
   */
  ended(close: RelayClose): void {
    if (!this.#close || close.kind === 'idle' || close.kind === 'loop') this.#close = close
  }

  /** Publishes the closing record, once; false when it was published already. */
  close(downstream: ByteCounts, upstream: ByteCounts): boolean {
    if (this.#closed) return false
    this.#closed = true
    this.#events.closed(this.#record(downstream, upstream))
    return true
  }

  #record(downstream: ByteCounts, upstream: ByteCounts): ConnectionRecord {
    const dst = this.route.destination
    const names = nameOutcome({ failure: this.#failure, looped: this.#looped, close: this.#close })
    return {
      id: this.id,
      disposition: 'proxied',
      startTime: new Date(this.#start),
      durationMs: Math.round(performance.now() - this.#startMs),
      cluster: this.route.cluster,
      serviceName: this.route.serviceName,
      flags: names.flags,
      terminationDetails: names.terminationDetails,
      failureReason: names.failureReason,
      downstreamRemote: this.#downstreamRemote,
      downstreamLocal: dst,
      downstream,
      upstream: { host: dst, local: this.#upstreamLocal, bytes: upstream },
    }
  }
}
