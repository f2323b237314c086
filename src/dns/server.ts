// The sidecar's DNS proxy: UDP and TCP on 127.0.0.1 and [::1] only (the capture rules REDIRECT port 53
// there; on any other address it would be an open resolver). TCP follows RFC 7766 (tcp-connection.ts):
// pipelined queries answered as they complete with backpressure, an idle timeout, a frame-size limit and a
// connection limit.
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { ListenError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { RegistryEntry } from '../registry/registry.js'
import type { Stats } from '../stats/stats.js'
import type { DnsConfig } from './config.js'
import { DnsMetrics } from './metrics.js'
import { Resolver } from './resolver.js'
import { NameTable, namespaceFromSearch } from './table.js'
import { DnsTcpConnection, TcpBacklog } from './tcp-connection.js'

/**
 * The part of the sidecar's descriptor budget (src/proxy/fd-budget.ts) the server uses, declared here so that
 * src/dns imports nothing from src/proxy, which imports src/dns.
 */
export interface DescriptorBudget {
  /** reads the limit and the descriptors in use again, now with the server's own sockets bound */
  measure(): void
  /** sets aside up to n descriptors for the caller, returns how many it got */
  reserve(n: number): number
}

/**
 * Makes the listening sockets elsewhere (a ztunnel: inside a pod's network namespace): a bound socket's fd
 * (tcp: listening too). Without it the server binds its own in this namespace.
 */
export type DnsSocketMaker = (type: 'udp' | 'tcp', host: string, port: number) => number

export class DnsServer {
  readonly metrics: DnsMetrics
  readonly resolver: Resolver
  readonly #config: DnsConfig
  /** the DNS log (one debug line per query: where its answer came from); /logging?level=debug shows it */
  readonly log: Logger
  readonly #log: Logger
  readonly #udp: UdpSocket[] = []
  readonly #tcp: Server[] = []
  readonly #connections = new Set<DnsTcpConnection>()
  readonly #backlog: TcpBacklog
  readonly addresses: string[] = []
  readonly #makeSocket: DnsSocketMaker | undefined

  /** the sidecar's descriptor budget, which the forwarder takes its share of; none when run alone (tests) */
  readonly #fdBudget: DescriptorBudget | undefined

  constructor(
    config: DnsConfig,
    registry: RegistryEntry[],
    stats: Stats,
    log: Logger,
    fdBudget?: DescriptorBudget,
    makeSocket?: DnsSocketMaker,
  ) {
    this.#config = config
    this.#makeSocket = makeSocket
    this.#fdBudget = fdBudget
    this.#log = log
    this.log = log
    this.metrics = new DnsMetrics(stats)
    this.#backlog = new TcpBacklog(config.maxTcpBufferedBytes, this.metrics.tcpBufferedBytes)
    const table = new NameTable(registry, config.hosts, { ...namespaceFromSearch(config.search), search: config.search })
    this.resolver = new Resolver(config, table, this.metrics, log)
  }

  async start(): Promise<void> {
    for (const host of ['127.0.0.1', '::1']) {
      try {
        await this.#listenUdp(host)
        await this.#listenTcp(host)
        this.addresses.push(host.includes(':') ? `[${host}]:${this.#config.port}` : `${host}:${this.#config.port}`)
      } catch (err) {
        // A pod without IPv6 has no ::1; IPv4 alone still serves every captured query there.
        if (host === '::1' && (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') {
          this.#log.warn('no ::1 in this namespace: DNS proxy on IPv4 only')
          continue
        }
        await this.close()
        throw new ListenError(`DNS proxy cannot listen on ${host} port ${this.#config.port}: ${(err as Error).message}`, err)
      }
    }
    // A forward holds one socket until its answer or timeout: the forwarder's cap comes out of the same
    // descriptor budget as the listeners' connections, measured again now that our sockets are bound.
    if (this.#fdBudget) {
      this.#fdBudget.measure()
      this.resolver.forwardLimit = this.#fdBudget.reserve(this.#config.maxInflight)
    }
    this.#log.info(
      {
        listen: this.addresses,
        upstreams: this.resolver.forwarder.servers,
        names: this.resolver.table.size,
        forwardLimit: this.resolver.forwardLimit,
      },
      'dns proxy ready',
    )
  }

  #listenUdp(host: string): Promise<void> {
    const socket = host.includes(':') ? createSocket({ type: 'udp6', ipv6Only: true }) : createSocket('udp4')
    socket.on('message', (msg, rinfo) => void this.#udpQuery(socket, msg, rinfo.address, rinfo.port))
    // A send error (client gone) is the client's problem, never the server's end.
    socket.on('error', (err) => this.#log.warn({ err }, 'dns udp socket error'))
    return new Promise((resolve, reject) => {
      socket.once('error', reject)
      const bound = () => {
        socket.off('error', reject)
        this.#udp.push(socket)
        resolve()
      }
      if (!this.#makeSocket) return void socket.bind(this.#config.port, host, bound)
      try {
        socket.bind({ fd: this.#makeSocket('udp', host, this.#config.port) }, bound)
      } catch (err) {
        socket.close()
        reject(err as Error)
      }
    })
  }

  async #udpQuery(socket: UdpSocket, msg: Buffer, address: string, port: number): Promise<void> {
    const out = await this.resolver.resolve(msg, 'udp', `${address}:${port}`)
    if (out) socket.send(out, port, address, (err) => err && this.#log.debug({ err }, 'dns udp reply not sent'))
  }

  #listenTcp(host: string): Promise<void> {
    const server = createServer((s) => this.#tcpConnection(s))
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      const listening = () => {
        server.off('error', reject)
        this.#tcp.push(server)
        resolve()
      }
      if (!this.#makeSocket) {
        return void server.listen({ port: this.#config.port, host, ...(host.includes(':') ? { ipv6Only: true } : {}) }, listening)
      }
      try {
        server.listen({ fd: this.#makeSocket('tcp', host, this.#config.port) }, listening)
      } catch (err) {
        reject(err as Error)
      }
    })
  }

  #tcpConnection(socket: Socket): void {
    // All slots taken: the connection idle longest gives way (slow senders cannot hold them all); with
    // every one waiting for answers, the new one is closed.
    if (this.#connections.size >= this.#config.maxTcpConnections) {
      const oldest = this.#oldestIdle()
      if (!oldest) {
        this.metrics.tcpOverflow.inc()
        socket.on('error', () => {})
        return void socket.destroy()
      }
      this.#connections.delete(oldest)
      oldest.evict()
    }
    this.metrics.tcpConnections.inc()
    const c = new DnsTcpConnection(socket, {
      config: this.#config,
      resolver: this.resolver,
      metrics: this.metrics,
      log: this.#log,
      backlog: this.#backlog,
    })
    this.#connections.add(c)
    socket.on('close', () => this.#connections.delete(c))
  }

  #oldestIdle(): DnsTcpConnection | undefined {
    let oldest: DnsTcpConnection | undefined
    for (const c of this.#connections) if (c.idle && (!oldest || c.lastActive < oldest.lastActive)) oldest = c
    return oldest
  }

  async close(): Promise<void> {
    for (const s of this.#udp.splice(0)) s.close()
    for (const c of this.#connections) c.socket.destroy()
    await Promise.all(this.#tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))))
  }
}
