// A mesh pod's outbound (15001) over HBONE, as ztunnel's src/proxy/outbound.rs: when the original destination is
// a workload the table marks HBONE, the connection goes to that pod's 15008 as an HTTP/2 CONNECT (authority =
// the original ip:port) over mutual TLS, presenting the source pod's certificate and expecting the destination's
// SPIFFE id. The TCP socket to 15008 is made inside the SOURCE pod's namespace and marked 0x539, as ztunnel
// inpod does, so the pod's own rules let it out unredirected. Other destinations keep the plain path.
//
// This always relays on node:net, also under --relay native: the native engine splices two TCP descriptors
// and cannot speak TLS or HTTP/2, so an HBONE tunnel's bytes must pass through this process.
import type { Socket } from 'node:net'
import type { ClientHttp2Stream } from 'node:http2'
import type { Logger } from '../logger.js'
import { endpoint, endpointOf, formatEndpoint, type Endpoint } from '../net/address.js'
import type { ProxyConfig } from '../proxy/config.js'
import { ConnectionLedger, type ConnectionContext, type InpodSockets, type PassthroughRoute } from '../proxy/engines/ledger.js'
import type { ActiveConnection } from '../proxy/listener.js'
import { connectPrepared } from '../proxy/transparent.js'
import type { Stats } from '../stats/stats.js'
import { HboneClient, HboneError, identityOfPem, splice, type HboneIdentity, type SpliceResult } from './hbone/index.js'
import type { Workload, WorkloadTable } from './workloads.js'

export const HBONE_PORT = 15008

/** What the access log and the metrics say of a connection carried over HBONE (ztunnel's src/dst.identity). */
export interface MeshInfo {
  srcIdentity: string
  dstIdentity: string
  /** outbound: the peer's 15008 (ztunnel's dst.addr); the target is then dst.hbone_addr */
  via?: Endpoint
  target: Endpoint
}

export interface OutboundDeps {
  table: WorkloadTable
  identity: HboneIdentity
  sockets: InpodSockets
  config: ProxyConfig
  stats: Stats
  log: Logger
  /** connection id → its HBONE facts, read by the ztunnel's telemetry when the connection closes */
  mesh: Map<number, MeshInfo>
}

export class HboneOutbound {
  readonly client: HboneClient
  /** the pod's own SPIFFE id, from its certificate */
  readonly identityName: string
  readonly #deps: OutboundDeps

  constructor(deps: OutboundDeps) {
    this.#deps = deps
    this.identityName = identityOfPem(deps.identity.cert)
    this.client = new HboneClient({
      identity: deps.identity,
      log: deps.log,
      socketFactory: (via) =>
        connectPrepared({ netns: deps.sockets.netns, mark: deps.sockets.mark }, endpointOf(via.address, via.port), {
          allowHalfOpen: false,
          noDelay: true,
          highWaterMark: 64 * 1024,
        }),
    })
  }

  /** The listener's divert hook: an HBONE connection for a destination the table marks HBONE, else null. */
  readonly divert = (
    ctx: ConnectionContext,
    socket: Socket,
    route: PassthroughRoute,
    remote: Endpoint | undefined,
  ): ActiveConnection | null => {
    if (ctx.kind !== 'outbound') return null
    const w = this.#deps.table.byAddress(route.destination.address)
    if (!w || w.protocol !== 'HBONE') return null
    return new HboneConnection(ctx, this.#deps, this.client, socket, route, remote, w)
  }

  close(): void {
    this.client.close()
  }
}

class HboneConnection implements ActiveConnection {
  readonly listenerKind = 'outbound' as const
  readonly #ledger: ConnectionLedger
  readonly #deps: OutboundDeps
  readonly #socket: Socket
  #stream: ClientHttp2Stream | null = null
  #timer: NodeJS.Timeout | undefined
  #over = false

  constructor(
    ctx: ConnectionContext,
    deps: OutboundDeps,
    client: HboneClient,
    socket: Socket,
    route: PassthroughRoute,
    remote: Endpoint | undefined,
    w: Workload,
  ) {
    this.#deps = deps
    this.#socket = socket
    this.#ledger = new ConnectionLedger(ctx, route, remote)
    const target = route.destination
    const via = { address: target.address, port: HBONE_PORT }
    deps.mesh.set(this.id, { srcIdentity: client.identity, dstIdentity: w.identity, via: { ...via, family: target.family }, target })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#ledger.ended({ kind: 'error', side: 'downstream', code: err.code })
      this.#stream?.destroy()
    })
    socket.once('close', () => {
      if (this.#stream) return // the splice reports
      this.#over = true // a tunnel or failure that comes after the client left is not this connection's any more
      this.#finish(null)
    })
    this.#timer = setTimeout(() => {
      this.#ledger.failed({ timeout: true })
      this.#fail(
        `HBONE: no tunnel to ${formatEndpoint(target)} via ${via.address}:${via.port} in ${ctx.config.connectTimeoutMs} ms`,
        'timeout',
      )
    }, ctx.config.connectTimeoutMs)
    client
      .connect({ target, via, expectIdentity: w.identity, ...(remote ? { source: { address: remote.address, port: remote.port } } : {}) })
      .then(
        (stream) => this.#tunnel(stream, ctx),
        (err: Error) => {
          const reason = err instanceof HboneError ? err.reason : 'session'
          if (this.#over) return
          this.#ledger.failed({ timeout: false, errno: 0, code: `hbone_${reason}` }, err)
          this.#fail(err.message, reason)
        },
      )
  }

  get id(): number {
    return this.#ledger.id
  }

  #fail(message: string, reason: string): void {
    clearTimeout(this.#timer)
    this.#over = true
    this.#deps.stats.counter(`ztunnel.hbone.outbound.failed.${reason}`).inc()
    this.#deps.log.warn({ err: message, dst: formatEndpoint(this.#ledger.route.destination), reason }, 'HBONE connect failed')
    // nothing was relayed: a plain close, as a failed upstream connect
    this.#socket.destroy()
  }

  #tunnel(stream: ClientHttp2Stream, ctx: ConnectionContext): void {
    clearTimeout(this.#timer)
    if (this.#over || this.#socket.destroyed) {
      stream.destroy()
      return
    }
    this.#stream = stream
    const tls = stream.session?.socket
    this.#ledger.connected(endpoint(tls?.localAddress, tls?.localPort))
    this.#deps.stats.counter('ztunnel.hbone.outbound.tunnels').inc()
    if (ctx.config.idleTimeoutMs > 0) {
      this.#socket.setTimeout(ctx.config.idleTimeoutMs, () => {
        this.#ledger.idleTimeout()
        this.#ledger.ended({ kind: 'idle' })
        stream.destroy()
        this.#socket.destroy()
      })
    }
    splice(stream, this.#socket, (r) => this.#finish(r))
    this.#socket.resume()
  }

  #finish(r: SpliceResult | null): void {
    clearTimeout(this.#timer)
    if (r?.reset && !this.#socket.errored) {
      // the peer side went: its ztunnel, its app or the tunnel; the client was reset so it cannot take it for an end
      this.#ledger.ended({ kind: 'error', side: 'upstream', code: 'HBONE_RESET' })
      this.#deps.stats.counter('ztunnel.hbone.outbound.reset').inc()
      this.#deps.log.warn(
        { dst: formatEndpoint(this.#ledger.route.destination), sent: r.fromUpstream, received: r.toUpstream },
        'HBONE tunnel reset',
      )
    }
    this.#ledger.close({ rx: this.#socket.bytesRead, tx: this.#socket.bytesWritten }, { rx: r?.toUpstream ?? 0, tx: r?.fromUpstream ?? 0 })
  }

  onUpstreamLooped(): void {
    // never asked: an HBONE tunnel's socket is not one the loop guard tracks (it goes to a peer's 15008)
  }

  abort(): void {
    this.#ledger.ended({ kind: 'drain' })
    this.#over = true
    this.#stream?.destroy()
    this.#socket.resetAndDestroy()
  }
}
