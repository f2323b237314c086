// One pod served by the ztunnel (ambient mode): the listeners istio-cni's in-pod rules redirect to, made inside
// the pod's network namespace but owned by the ztunnel's process on the node. Outbound (15001) and inbound
// plaintext (15006) are the sidecar's own listeners (src/proxy/listener.ts) with the pod's sockets: every one
// made in the pod's namespace and marked 0x539, so the in-pod rules pass it through unredirected; the
// connection to the app leaves from the caller's own address (IP_TRANSPARENT), and the pod's
// connmark 0x111 / table 100 route brings the app's replies back to it. 15053 is the sidecar's DNS proxy.
// With a workload table and identities (mesh), 15008 serves HBONE (hbone-inbound.ts) and outbound connections
// to an HBONE workload go over it (hbone-outbound.ts); without them 15008 is listened on, so the port is taken
// as in Istio, but its connections are closed and counted (ztunnel.hbone.not_served).
import { closeSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { DnsServer } from '../dns/server.js'
import { listenFailure, PodNetnsError } from '../errors.js'
import type { Logger } from '../logger.js'
import { netnsSocket } from '../native/netns.js'
import type { AccessLogSink } from '../proxy/access-log.js'
import type { ProxyConfig } from '../proxy/config.js'
import type { InpodSockets } from '../proxy/engines/ledger.js'
import type { FdBudget } from '../proxy/fd-budget.js'
import { identityOf, VirtualListener } from '../proxy/listener.js'
import { LoopGuard } from '../proxy/loop-guard.js'
import { MisdirectedLog } from '../proxy/misdirected.js'
import { Registry } from '../registry/registry.js'
import { Stats } from '../stats/stats.js'
import { HboneInbound } from './hbone-inbound.js'
import { HBONE_PORT, HboneOutbound, type MeshInfo } from './hbone-outbound.js'
import type { PooledSession } from './hbone/pool.js'
import { podAddresses } from './pod-addresses.js'
import type { IdentityStore, WorkloadTable } from './workloads.js'

/** Istio's in-pod mark (ztunnel's PACKET_MARK, istio-cni's InpodMark): 1337 = 0x539. */
export const INPOD_MARK = 0x539
export { HBONE_PORT }

/** The ztunnel's workload table and the mesh identities (--local-xds, --ca-file, --identity-dir). */
export interface MeshConfig {
  table: WorkloadTable
  identities: IdentityStore
}

/** What istio-cni tells the ztunnel of a pod (ZDS's AddWorkload: uid and WorkloadInfo). */
export interface PodInfo {
  uid: string
  name: string
  namespace: string
  serviceAccount: string
}

/** An access log that writes nothing: a ztunnel logs each connection in its own format (access-log.ts here). */
const noEnvoyLog: AccessLogSink = { write() {}, reopen() {}, close: async () => {} }

export class PodProxy {
  readonly info: PodInfo
  /** the pod's Envoy-style statistics (listener.*, cluster.*, dns): /stats?pod=NAME on the ztunnel's admin */
  readonly stats = new Stats()
  readonly listeners: VirtualListener[]
  readonly dns: DnsServer | null
  readonly log: Logger
  readonly sockets: InpodSockets
  readonly started = new Date()
  /** the pod's own addresses, read at start (the access log's names for it; the HBONE targets it serves) */
  addresses: string[] = []
  /** HBONE connections' identities by connection id, taken by the ztunnel's telemetry at close */
  readonly mesh = new Map<number, MeshInfo>()
  readonly hboneOut: HboneOutbound | null = null
  readonly hboneIn: HboneInbound | null = null
  readonly #hbone: Server
  readonly #hboneSockets = new Set<Socket>()
  readonly #config: ProxyConfig

  /** Takes ownership of netnsFd: it is closed by stop(). */
  constructor(info: PodInfo, netnsFd: number, config: ProxyConfig, log: Logger, fdBudget: FdBudget, mesh?: MeshConfig) {
    this.info = info
    this.#config = config
    this.log = log.child({ wl: `${info.namespace}/${info.name}` })
    this.sockets = { netns: netnsFd, mark: INPOD_MARK }
    if (mesh) {
      let identity
      try {
        identity = mesh.identities.of(info.namespace, info.serviceAccount)
      } catch (err) {
        closeSync(netnsFd)
        throw err
      }
      const common = {
        identity,
        sockets: this.sockets,
        config,
        stats: this.stats,
        log: this.log.child({ component: 'hbone' }),
        mesh: this.mesh,
      }
      this.hboneOut = new HboneOutbound({ ...common, table: mesh.table })
      this.hboneIn = new HboneInbound({ ...common, addresses: () => this.addresses })
    }
    const deps = {
      config,
      stats: this.stats,
      log: this.log,
      loopGuard: new LoopGuard(),
      accessLog: noEnvoyLog,
      fdBudget,
      misdirected: new MisdirectedLog(this.log, this.stats, identityOf(config)),
      router: {
        outboundPort: config.outboundPort,
        inboundPort: config.inboundPort,
        policy: config.outboundTrafficPolicy,
        registry: new Registry(config.registry),
      },
      inpod: this.sockets,
    }
    // only outbound goes over HBONE: a plaintext caller from outside the mesh reaching 15006 is served plain
    const outbound = this.hboneOut ? { ...deps, divert: this.hboneOut.divert } : deps
    this.listeners = [new VirtualListener('outbound', outbound), new VirtualListener('inbound', deps)]
    const makeDnsSocket = (type: 'udp' | 'tcp', host: string, port: number) =>
      netnsSocket({
        netns: netnsFd,
        family: host.includes(':') ? 6 : 4,
        type,
        address: host,
        port,
        mark: INPOD_MARK,
        ...(type === 'tcp' ? { reuseAddr: true, listen: 128 } : {}),
      })
    this.dns =
      config.dns.port === 0
        ? null
        : new DnsServer(config.dns, config.registry, this.stats, this.log.child({ component: 'dns' }), fdBudget, makeDnsSocket)
    this.#hbone = createServer((socket) => this.#hboneConnection(socket))
  }

  /** The pod's statistics with its HBONE server's own counters (TLS and ALPN failures, refusals by reason). */
  snapshot(): Record<string, number> {
    const snap = this.stats.snapshot()
    const c = this.hboneIn?.server.counters
    if (c) {
      const server = { sessions: c.sessions, tls_failures: c.tlsFailures, alpn_failures: c.alpnFailures, session_errors: c.sessionErrors }
      for (const [k, v] of Object.entries(server)) snap[`ztunnel.hbone.inbound.server.${k}`] = v
      for (const [k, v] of Object.entries(c.refused)) snap[`ztunnel.hbone.inbound.server.refused.${k}`] = v
    }
    if (this.hboneOut) snap['ztunnel.hbone.outbound.ping_timeouts'] = this.hboneOut.client.counters.pingTimeouts
    return snap
  }

  /**
   * The pod's mesh identity and the HBONE sessions its outbound holds in the pool (null when the ztunnel has no
   * workload table): /config_dump's `hbone`, which `lab status` shows.
   */
  hboneState(): { identity: string; sessions: PooledSession[]; inbound: { sessions: number; tunnels: number } } | null {
    if (!this.hboneOut) return null
    const inbound = {
      sessions: this.hboneIn?.server.counters.sessions ?? 0,
      tunnels: this.stats.counters.get('ztunnel.hbone.inbound.tunnels')?.value ?? 0,
    }
    return { identity: this.hboneOut.identityName, sessions: this.hboneOut.client.pooled(), inbound }
  }

  get activeConnections(): number {
    return this.listeners.reduce((n, l) => n + l.activeConnections, 0)
  }

  /** The listeners, in the pod's namespace; on a failure whatever was opened is closed again. */
  async start(): Promise<void> {
    try {
      this.#enter()
      this.addresses = await podAddresses(this.sockets.netns)
      for (const l of this.listeners) {
        await l.listen()
        this.log.info({ address: `[::]:${l.port}`, component: l.kind }, 'listener established')
      }
      if (this.hboneIn) {
        await this.hboneIn.listen()
        this.log.info({ address: `[::]:${HBONE_PORT}`, component: 'inbound' }, 'listener established')
      } else await this.#listenHbone()
      await this.dns?.start()
    } catch (err) {
      await this.#close()
      throw err
    }
  }

  /** Fails now, naming the pod, when its namespace cannot be entered: a socket made there and closed. */
  #enter(): void {
    try {
      closeSync(netnsSocket({ netns: this.sockets.netns, family: 4, type: 'udp' }))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).syscall === 'setns') throw new PodNetnsError(this.info.name, err as NodeJS.ErrnoException)
      throw err
    }
  }

  /** ZDS's DelWorkload: stop accepting, close every open connection, give the namespace back. */
  async stop(): Promise<void> {
    await this.#close()
  }

  async #close(): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.stopAccepting()))
    for (const l of this.listeners) l.abortAll()
    await Promise.race([Promise.all(this.listeners.map((l) => l.idle())), new Promise((r) => setTimeout(r, 1000).unref())])
    for (const s of this.#hboneSockets) s.destroy()
    this.hboneOut?.close()
    await this.hboneIn?.close()
    await new Promise<void>((resolve) => (this.#hbone.listening ? this.#hbone.close(() => resolve()) : resolve()))
    await this.dns?.close()
    try {
      closeSync(this.sockets.netns)
    } catch {
      // closed already (a second stop)
    }
  }

  #listenHbone(): Promise<void> {
    const address = this.#config.bindAddress
    return new Promise((resolve, reject) => {
      let fd: number
      try {
        fd = netnsSocket({
          netns: this.sockets.netns,
          family: address.includes(':') ? 6 : 4,
          type: 'tcp',
          address,
          port: HBONE_PORT,
          mark: INPOD_MARK,
          reuseAddr: true,
          listen: 128,
        })
      } catch (err) {
        return reject(listenFailure('hbone', address, HBONE_PORT, err as NodeJS.ErrnoException))
      }
      this.#hbone.once('error', reject)
      this.#hbone.listen({ fd }, () => {
        this.#hbone.off('error', reject)
        this.log.info({ address: `[::]:${HBONE_PORT}`, component: 'inbound' }, 'listener established')
        resolve()
      })
    })
  }

  /** Without identities HBONE cannot be served: a connection is closed, counted. */
  #hboneConnection(socket: Socket): void {
    this.stats.counter('ztunnel.hbone.not_served').inc()
    this.log.warn(
      { src: `${socket.remoteAddress}:${socket.remotePort}` },
      'HBONE (port 15008) is not served without --local-xds and identities: connection closed',
    )
    this.#hboneSockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => this.#hboneSockets.delete(socket))
    socket.destroy()
  }
}
