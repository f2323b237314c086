// One captured connection: dial the upstream, relay both ways, close both sides together. It publishes its
// lifecycle (opened, connected, failed, idle timeout, closed with one record) and counts nothing itself:
// the observers (connection-observer.ts) turn the events into statistics and the access-log line.
import { connect, type NetConnectOpts, type Socket } from 'node:net'
import type { Logger } from '../logger.js'
import type { ListenerKind, Route } from './clusters.js'
import type { ProxyConfig } from './config.js'
import { nextConnectionId, proxiedRecord, type ConnectionObserver, type ConnectionRecord } from './connection-record.js'
import { endpoint, formatEndpoint, type Endpoint } from '../net/address.js'
import type { LoopGuard, LoopOwner } from './loop-guard.js'
import { relay, type FlowCounters } from './relay.js'
import { ResponseFlag, upstreamConnectFailed } from './response-flags.js'
import { connectTransparent } from './transparent.js'

type PassthroughRoute = Extract<Route, { kind: 'passthrough' }>

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
}

export class ProxiedConnection implements LoopOwner {
  readonly id = nextConnectionId()
  readonly #ctx: ConnectionContext
  readonly #downstream: Socket
  readonly #upstream: Socket
  readonly #route: PassthroughRoute
  readonly #start = new Date()
  readonly #startMs = performance.now()
  readonly #log: Logger
  #connectTimer: NodeJS.Timeout | undefined
  #connected = false
  #flags: readonly ResponseFlag[] = []
  #failureReason = ''
  #termination = ''
  #open = 2
  readonly #downstreamRemote: Endpoint | undefined
  #upstreamLocal: Endpoint | undefined

  constructor(ctx: ConnectionContext, downstream: Socket, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#ctx = ctx
    this.#downstream = downstream
    this.#route = route
    this.#log = ctx.log
    this.#downstreamRemote = downstreamRemote
    const dst = route.destination
    this.#upstream = this.#dial(dst)
    ctx.events.opened({ id: this.id, disposition: 'proxied', cluster: route.cluster, serviceName: route.serviceName, flags: [] })
    ctx.loopGuard.track(this.#upstream, dst, this)
    this.#connectTimer = setTimeout(() => this.#connectTimeout(), ctx.config.connectTimeoutMs)
    this.#upstream.once('connect', () => this.#onConnect())
    this.#upstream.on('error', (err: NodeJS.ErrnoException) => this.#onUpstreamError(err))
    this.#downstream.on('error', (err: NodeJS.ErrnoException) => this.#onDownstreamError(err))
    this.#upstream.once('close', () => this.#onClose(this.#upstream))
    this.#downstream.once('close', () => this.#onClose(this.#downstream))
    if (ctx.config.idleTimeoutMs > 0) {
      // Any byte either way passes through the downstream socket, so its inactivity is the connection's.
      this.#downstream.setTimeout(ctx.config.idleTimeoutMs, () => this.#idleTimeout())
    }
  }

  /**
   * The upstream socket to the original destination; inbound connections leave from 127.0.0.6 / ::6, or in
   * TPROXY mode from the client's own address (a transparent socket marked 1337, src/proxy/transparent.ts).
   */
  #dial(dst: Endpoint): Socket {
    const config = this.#ctx.config
    const client = this.#downstreamRemote
    if (this.#ctx.kind === 'inbound' && config.interceptionMode === 'TPROXY' && client) {
      return connectTransparent(client, dst, { allowHalfOpen: true, noDelay: true, highWaterMark: config.bufferLimitBytes })
    }
    const localAddress = this.#ctx.kind === 'inbound' ? (dst.family === 6 ? config.inboundSourceV6 : config.inboundSourceV4) : undefined
    // highWaterMark reaches the Socket's Duplex options though @types/node does not list it for connect().
    return connect({
      host: dst.address,
      port: dst.port,
      family: dst.family,
      ...(localAddress ? { localAddress } : {}),
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: config.bufferLimitBytes,
    } as NetConnectOpts)
  }

  #onConnect(): void {
    clearTimeout(this.#connectTimer)
    this.#connected = true
    this.#upstreamLocal = endpoint(this.#upstream.localAddress, this.#upstream.localPort)
    this.#ctx.events.connected({ id: this.id, cluster: this.#route.cluster, upstreamLocal: this.#upstreamLocal })
    const flow = this.#ctx.flow(this.#route.cluster)
    relay(this.#downstream, this.#upstream, flow)
    relay(this.#upstream, this.#downstream, flow)
    this.#downstream.resume()
  }

  #connectTimeout(): void {
    this.#failUpstream('connect_timeout', true)
  }

  #failUpstream(reason: string, timeout: boolean, code?: string): void {
    this.#ctx.events.failed({ id: this.id, cluster: this.#route.cluster, reason, timeout, ...(code ? { code } : {}) })
    this.#flags = upstreamConnectFailed
    this.#failureReason = reason
    this.#upstream.destroy()
    // Nothing was relayed yet; a plain close tells the client the upstream is unreachable.
    this.#downstream.destroy()
  }

  #onUpstreamError(err: NodeJS.ErrnoException): void {
    if (!this.#connected) {
      clearTimeout(this.#connectTimer)
      this.#failUpstream(`delayed_connect_error:_${-(err.errno ?? 0) || err.code}`, false, err.code)
      this.#log.debug({ err, dst: formatEndpoint(this.#route.destination) }, 'upstream connect failed')
      return
    }
    // Mid-stream failure: reset the client so a cut-short stream is never mistaken for a whole one.
    if (!this.#termination) this.#termination = `upstream_${(err.code ?? 'error').toLowerCase()}`
    this.#downstream.resetAndDestroy()
  }

  #onDownstreamError(err: NodeJS.ErrnoException): void {
    if (!this.#termination) this.#termination = `downstream_${(err.code ?? 'error').toLowerCase()}`
    if (this.#connected) this.#upstream.resetAndDestroy()
    else this.#upstream.destroy()
  }

  #idleTimeout(): void {
    this.#ctx.events.idleTimeout({ id: this.id, cluster: this.#route.cluster })
    this.#termination = 'idle_timeout'
    this.#downstream.destroy()
    this.#upstream.destroy()
  }

  get listenerKind(): ListenerKind {
    return this.#ctx.kind
  }

  onUpstreamLooped(): void {
    this.#flags = [ResponseFlag.UpstreamConnectionFailure]
    this.#termination = 'upstream_loop'
    this.#upstream.destroy()
    this.#downstream.resetAndDestroy()
  }

  /** Closes both sides now (end of drain). */
  abort(): void {
    if (!this.#termination) this.#termination = 'drain_timeout'
    this.#upstream.resetAndDestroy()
    this.#downstream.resetAndDestroy()
  }

  #onClose(side: Socket): void {
    // When one side is fully closed and the other still has a half open, finish that half too.
    const other = side === this.#upstream ? this.#downstream : this.#upstream
    if (!other.destroyed && other.writableFinished && other.readableEnded) other.destroy()
    if (--this.#open > 0) return
    clearTimeout(this.#connectTimer)
    this.#ctx.events.closed(this.#record())
  }

  #record(): ConnectionRecord {
    return proxiedRecord({
      id: this.id,
      startTime: this.#start,
      startMs: this.#startMs,
      route: this.#route,
      flags: this.#flags,
      terminationDetails: this.#termination,
      failureReason: this.#failureReason,
      downstreamRemote: this.#downstreamRemote,
      upstreamLocal: this.#upstreamLocal,
      downstream: { rx: this.#downstream.bytesRead, tx: this.#downstream.bytesWritten },
      upstream: { rx: this.#upstream.bytesRead, tx: this.#upstream.bytesWritten },
    })
  }
}
