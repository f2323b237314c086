// One captured connection: dial the upstream, relay both ways, close both sides together. It publishes its
// lifecycle (opened, connected, failed, idle timeout, closed with one record) and counts nothing itself:
// the observers (connection-observer.ts) turn the events into statistics and the access-log line.
import { connect, type NetConnectOpts, type Socket } from 'node:net'
import type { ListenerKind } from '../clusters.js'
import { endpoint, type Endpoint } from '../../net/address.js'
import { ConnectionLedger, connectFailure, upstreamSource, type ConnectionContext, type PassthroughRoute } from './ledger.js'
import type { LoopOwner } from '../loop-guard.js'
import { relay } from './node-relay.js'
import { connectPrepared } from '../transparent.js'

export class ProxiedConnection implements LoopOwner {
  readonly #ctx: ConnectionContext
  readonly #ledger: ConnectionLedger
  readonly #downstream: Socket
  readonly #upstream: Socket
  #connectTimer: NodeJS.Timeout | undefined
  #connected = false
  #open = 2
  readonly #downstreamRemote: Endpoint | undefined

  constructor(ctx: ConnectionContext, downstream: Socket, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#ctx = ctx
    this.#downstream = downstream
    this.#downstreamRemote = downstreamRemote
    const dst = route.destination
    this.#ledger = new ConnectionLedger(ctx, route, downstreamRemote)
    this.#upstream = this.#dial(dst)
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

  get id(): number {
    return this.#ledger.id
  }

  /** The upstream socket to the original destination, from ledger.ts's upstreamSource. */
  #dial(dst: Endpoint): Socket {
    const config = this.#ctx.config
    const source = upstreamSource(this.#ctx, dst, this.#downstreamRemote)
    if (source.netns !== undefined || (source.transparent && source.address)) {
      return connectPrepared(source, dst, { allowHalfOpen: true, noDelay: true, highWaterMark: config.bufferLimitBytes })
    }
    // highWaterMark reaches the Socket's Duplex options though @types/node does not list it for connect().
    return connect({
      host: dst.address,
      port: dst.port,
      family: dst.family,
      ...(source.address ? { localAddress: source.address } : {}),
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: config.bufferLimitBytes,
    } as NetConnectOpts)
  }

  #onConnect(): void {
    clearTimeout(this.#connectTimer)
    this.#connected = true
    this.#ledger.connected(endpoint(this.#upstream.localAddress, this.#upstream.localPort))
    const flow = this.#ctx.flow(this.#ledger.route.cluster)
    relay(this.#downstream, this.#upstream, flow)
    relay(this.#upstream, this.#downstream, flow)
    this.#downstream.resume()
  }

  #connectTimeout(): void {
    this.#ledger.failed({ timeout: true })
    this.#closeUnconnected()
  }

  #closeUnconnected(): void {
    this.#upstream.destroy()
    // Nothing was relayed yet; a plain close tells the client the upstream is unreachable.
    this.#downstream.destroy()
  }

  #onUpstreamError(err: NodeJS.ErrnoException): void {
    if (!this.#connected) {
      clearTimeout(this.#connectTimer)
      this.#ledger.failed(connectFailure(err), err)
      this.#closeUnconnected()
      return
    }
    // Mid-stream failure: reset the client so a cut-short stream is never mistaken for a whole one.
    this.#ledger.ended({ kind: 'error', side: 'upstream', code: err.code })
    this.#downstream.resetAndDestroy()
  }

  #onDownstreamError(err: NodeJS.ErrnoException): void {
    this.#ledger.ended({ kind: 'error', side: 'downstream', code: err.code })
    if (this.#connected) this.#upstream.resetAndDestroy()
    else this.#upstream.destroy()
  }

  #idleTimeout(): void {
    this.#ledger.idleTimeout()
    this.#ledger.ended({ kind: 'idle' })
    this.#downstream.destroy()
    this.#upstream.destroy()
  }

  get listenerKind(): ListenerKind {
    return this.#ctx.kind
  }

  onUpstreamLooped(): void {
    this.#ledger.looped()
    this.#ledger.ended({ kind: 'loop' })
    this.#upstream.destroy()
    this.#downstream.resetAndDestroy()
  }

  /** Closes both sides now (end of drain). */
  abort(): void {
    this.#ledger.ended({ kind: 'drain' })
    this.#upstream.resetAndDestroy()
    this.#downstream.resetAndDestroy()
  }

  #onClose(side: Socket): void {
    // When one side is fully closed and the other still has a half open, finish that half too.
    const other = side === this.#upstream ? this.#downstream : this.#upstream
    if (!other.destroyed && other.writableFinished && other.readableEnded) other.destroy()
    if (--this.#open > 0) return
    clearTimeout(this.#connectTimer)
    this.#ledger.close(
      { rx: this.#downstream.bytesRead, tx: this.#downstream.bytesWritten },
      { rx: this.#upstream.bytesRead, tx: this.#upstream.bytesWritten },
    )
  }
}
