// One captured connection: dial the upstream, relay both ways, close both sides together and write the
// access log line. Counting happens at open and close only, never per chunk.
import { connect, type NetConnectOpts, type Socket } from 'node:net'
import type { Logger } from '../logger.js'
import type { AccessLogEntry } from './access-log.js'
import type { Route } from './clusters.js'
import { endpoint, formatEndpoint, type Endpoint } from './endpoint.js'
import { isFdExhaustion } from './fd-budget.js'
import type { ListenerContext } from './listener.js'
import type { LoopOwner } from './loop-guard.js'
import { relay } from './relay.js'
import { connectTransparent } from './transparent.js'

type PassthroughRoute = Extract<Route, { kind: 'passthrough' }>

export class ProxiedConnection implements LoopOwner {
  readonly #ctx: ListenerContext
  readonly #downstream: Socket
  readonly #upstream: Socket
  readonly #route: PassthroughRoute
  readonly #start = new Date()
  readonly #startMs = performance.now()
  readonly #log: Logger
  #connectTimer: NodeJS.Timeout | undefined
  #connected = false
  #flags: string[] = []
  #failureReason = ''
  #termination = ''
  #open = 2
  readonly #downstreamRemote: string
  #upstreamLocal = '-'

  constructor(ctx: ListenerContext, downstream: Socket, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#ctx = ctx
    this.#downstream = downstream
    this.#route = route
    this.#log = ctx.log
    const dst = route.destination
    const localAddress = ctx.kind === 'inbound' ? ctx.inboundSource(dst.family) : undefined
    const transparent = ctx.kind === 'inbound' && ctx.config.interceptionMode === 'TPROXY' && downstreamRemote
    // highWaterMark reaches the Socket's Duplex options though @types/node does not list it for connect().
    this.#upstream = transparent ? connectTransparent(transparent, dst, { allowHalfOpen: true, noDelay: true, highWaterMark: ctx.config.bufferLimitBytes }) : connect({
      host: dst.address,
      port: dst.port,
      family: dst.family,
      ...(localAddress ? { localAddress } : {}),
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: ctx.config.bufferLimitBytes,
    } as NetConnectOpts)
    ctx.cluster(route.cluster).upstreamCxTotal.inc()
    ctx.cluster(route.cluster).upstreamCxActive.inc()
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
    this.#downstreamRemote = formatEndpoint(downstreamRemote)
  }

  #onConnect(): void {
    clearTimeout(this.#connectTimer)
    this.#connected = true
    this.#upstreamLocal = formatEndpoint(endpoint(this.#upstream.localAddress, this.#upstream.localPort))
    const flow = this.#ctx.tcp(this.#route.cluster)
    relay(this.#downstream, this.#upstream, { paused: flow.pausedReading, resumed: flow.resumedReading })
    relay(this.#upstream, this.#downstream, { paused: flow.pausedReading, resumed: flow.resumedReading })
    this.#downstream.resume()
  }

  #connectTimeout(): void {
    this.#ctx.cluster(this.#route.cluster).upstreamCxConnectTimeout.inc()
    this.#failUpstream('connect_timeout')
  }

  #failUpstream(reason: string): void {
    this.#ctx.cluster(this.#route.cluster).upstreamCxConnectFail.inc()
    this.#flags = ['UF', 'URX']
    this.#failureReason = reason
    this.#upstream.destroy()
    // Nothing was relayed yet; a plain close tells the client the upstream is unreachable.
    this.#downstream.destroy()
  }

  #onUpstreamError(err: NodeJS.ErrnoException): void {
    if (!this.#connected) {
      clearTimeout(this.#connectTimer)
      if (isFdExhaustion(err)) this.#ctx.fdExhausted(err)
      this.#failUpstream(`delayed_connect_error:_${-(err.errno ?? 0) || err.code}`)
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
    this.#ctx.tcp(this.#route.cluster).idleTimeout.inc()
    this.#termination = 'idle_timeout'
    this.#downstream.destroy()
    this.#upstream.destroy()
  }

  onUpstreamLooped(): void {
    this.#flags = ['UF']
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
    this.#ctx.cluster(this.#route.cluster).upstreamCxActive.dec()
    this.#ctx.connectionClosed(this, this.#entry())
  }

  #entry(): AccessLogEntry {
    return {
      startTime: this.#start,
      responseFlags: this.#flags.join(','),
      connectionTerminationDetails: this.#termination,
      upstreamTransportFailureReason: this.#failureReason,
      bytesReceived: this.#downstream.bytesRead,
      bytesSent: this.#downstream.bytesWritten,
      durationMs: Math.round(performance.now() - this.#startMs),
      upstreamHost: formatEndpoint(this.#route.destination),
      upstreamCluster: this.#route.cluster,
      upstreamLocalAddress: this.#upstreamLocal,
      downstreamLocalAddress: formatEndpoint(this.#route.destination),
      downstreamRemoteAddress: this.#downstreamRemote,
    }
  }

  get upstreamBytes(): { rx: number; tx: number } {
    return { rx: this.#upstream.bytesRead, tx: this.#upstream.bytesWritten }
  }

  get cluster(): string {
    return this.#route.cluster
  }

  get serviceName(): string {
    return this.#route.serviceName
  }
}
