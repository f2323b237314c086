// A mesh pod's 15008, as ztunnel's src/proxy/inbound.rs: HboneServer (mutual TLS with the pod's own certificate,
// client certificates verified against the mesh CA, HTTP/2 CONNECT) on a listener made inside the pod, each
// tunnel dialling the app the way the plaintext 15006 path does (ledger.ts upstreamSource): a socket made in the
// pod, marked, IP_TRANSPARENT and bound to the peer's address, so the app sees its real caller. A target that
// is not one of the pod's own addresses is refused (400, ztunnel's IPMismatch). Each tunnel publishes one
// connection record on `events`, for the ztunnel's access log and metrics.
import type { Duplex } from 'node:stream'
import { listenFailure } from '../errors.js'
import type { Logger } from '../logger.js'
import { netnsSocket } from '../native/netns.js'
import { endpointOf, formatEndpoint, type Endpoint } from '../net/address.js'
import type { ProxyConfig } from '../proxy/config.js'
import { ConnectionLedger, upstreamSource, type InpodSockets, type PassthroughRoute } from '../proxy/engines/ledger.js'
import { ConnectionChannel } from '../proxy/engines/record.js'
import { connectPrepared } from '../proxy/transparent.js'
import type { Stats } from '../stats/stats.js'
import { HboneServer, identityOfPem, type HboneIdentity, type HbonePeer, type HboneTunnel, type HostPort } from './hbone/index.js'
import { HBONE_PORT, type MeshInfo } from './hbone-outbound.js'

export interface InboundDeps {
  identity: HboneIdentity
  sockets: InpodSockets
  config: ProxyConfig
  stats: Stats
  log: Logger
  /** the pod's own addresses: the only targets served */
  addresses: () => readonly string[]
  mesh: Map<number, MeshInfo>
}

/** IPv4-mapped forms made plain: the 15008 listener is dual-stack, its IPv4 peers come as ::ffff:a.b.c.d */
const ep = (h: HostPort): Endpoint => endpointOf(h.address, h.port)

export class HboneInbound {
  /** the tunnels' lifecycle, as a listener's (closed: one record per tunnel) */
  readonly events = new ConnectionChannel()
  readonly server: HboneServer
  readonly #deps: InboundDeps
  readonly #ledgers = new Map<HboneTunnel, ConnectionLedger>()
  readonly #self: string

  constructor(deps: InboundDeps) {
    this.#deps = deps
    this.#self = identityOfPem(deps.identity.cert)
    this.server = new HboneServer({
      identity: deps.identity,
      log: deps.log,
      accepts: (target) => {
        const ok = deps.addresses().includes(ep(target).address)
        if (!ok) deps.stats.counter('ztunnel.hbone.inbound.refused.target').inc()
        return ok
      },
      dial: (target, peer) => this.#dial(target, peer),
    })
    this.server.on('tunnel', (t: HboneTunnel) => this.#opened(t))
    this.server.on('tunnelClose', (t: HboneTunnel) => this.#closed(t))
  }

  /** Listens on the pod's 15008, a socket made inside its namespace (marked, as every one the ztunnel makes there). */
  async listen(): Promise<void> {
    const address = this.#deps.config.bindAddress
    let fd: number
    try {
      fd = netnsSocket({
        netns: this.#deps.sockets.netns,
        family: address.includes(':') ? 6 : 4,
        type: 'tcp',
        address,
        port: HBONE_PORT,
        mark: this.#deps.sockets.mark,
        listen: 128,
      })
    } catch (err) {
      throw listenFailure('hbone', address, HBONE_PORT, err as NodeJS.ErrnoException)
    }
    await this.server.listen({ fd })
  }

  close(): Promise<void> {
    return this.server.close()
  }

  #dial(target: HostPort, peer: HbonePeer): Promise<Duplex> {
    const config = this.#deps.config
    const dst = ep(target)
    const source = upstreamSource({ kind: 'inbound', config, inpod: this.#deps.sockets }, dst, ep(peer))
    return new Promise((resolve, reject) => {
      const s = connectPrepared(source, dst, { allowHalfOpen: true, noDelay: true, highWaterMark: config.bufferLimitBytes })
      const timer = setTimeout(() => s.destroy(new Error(`connect to ${formatEndpoint(dst)} timed out`)), config.connectTimeoutMs)
      s.once('connect', () => {
        clearTimeout(timer)
        s.off('error', fail)
        resolve(s)
      })
      const fail = (err: Error): void => {
        clearTimeout(timer)
        this.#deps.stats.counter('ztunnel.hbone.inbound.refused.dial').inc()
        reject(err)
      }
      s.once('error', fail)
    })
  }

  #opened(t: HboneTunnel): void {
    const dst = ep(t.target)
    const route: PassthroughRoute = {
      kind: 'passthrough',
      cluster: dst.family === 6 ? 'InboundPassthroughClusterIpv6' : 'InboundPassthroughClusterIpv4',
      filterChain: 'hbone',
      destination: dst,
      serviceName: 'unknown',
    }
    const ledger = new ConnectionLedger({ events: this.events, log: this.#deps.log }, route, ep(t.peer))
    ledger.connected(undefined)
    this.#ledgers.set(t, ledger)
    this.#deps.mesh.set(ledger.id, { srcIdentity: t.peer.identity, dstIdentity: this.#self, target: dst })
    this.#deps.stats.counter('ztunnel.hbone.inbound.tunnels').inc()
  }

  #closed(t: HboneTunnel): void {
    const ledger = this.#ledgers.get(t)
    if (!ledger) return
    this.#ledgers.delete(t)
    if (t.end === 'reset') {
      this.#deps.stats.counter('ztunnel.hbone.inbound.reset').inc()
      ledger.ended({ kind: 'error', side: 'downstream', code: 'HBONE_RESET' })
    }
    ledger.close({ rx: t.bytesIn, tx: t.bytesOut }, { rx: t.bytesOut, tx: t.bytesIn })
  }
}
