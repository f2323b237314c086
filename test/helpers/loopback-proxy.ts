// Drives the sidecar's listener and connections over loopback without root: the original destination comes
// from a function the test sets (no NAT), and everything the connection publishes is recorded.
import { connect, createServer, type Server, type Socket } from 'node:net'
import { pino } from 'pino'
import type { Test } from 'tap'
import type { AccessLogEntry, AccessLogSink } from '../../src/proxy/access-log.js'
import { defaultProxyConfig, type ProxyConfig } from '../../src/proxy/config.js'
import type { ConnectionObserver, ConnectionRecord } from '../../src/proxy/engines/record.js'
import type { Endpoint } from '../../src/net/address.js'
import { FdBudget } from '../../src/proxy/fd-budget.js'
import { VirtualListener } from '../../src/proxy/listener.js'
import { LoopGuard } from '../../src/proxy/loop-guard.js'
import { Registry } from '../../src/registry/registry.js'
import { Stats } from '../../src/stats/stats.js'

export const silent = pino({ level: 'silent' })

/** Every event a connection published, in order, by name. */
export class Recorder implements ConnectionObserver {
  readonly events: { name: keyof ConnectionObserver; id: number }[] = []
  readonly records: ConnectionRecord[] = []
  #waiters: (() => void)[] = []
  opened(e: { id: number }): void {
    this.events.push({ name: 'opened', id: e.id })
  }
  connected(e: { id: number }): void {
    this.events.push({ name: 'connected', id: e.id })
  }
  failed(e: { id: number }): void {
    this.events.push({ name: 'failed', id: e.id })
  }
  idleTimeout(e: { id: number }): void {
    this.events.push({ name: 'idleTimeout', id: e.id })
  }
  closed(r: ConnectionRecord): void {
    this.events.push({ name: 'closed', id: r.id })
    this.records.push(r)
    for (const w of this.#waiters.splice(0)) w()
  }
  /** the n-th closed record (1-based), once it is there */
  async record(n = 1): Promise<ConnectionRecord> {
    while (this.records.length < n) await new Promise<void>((r) => this.#waiters.push(r))
    return this.records[n - 1]!
  }
  names(): string[] {
    return this.events.map((e) => e.name)
  }
}

export class MemoryAccessLog implements AccessLogSink {
  readonly entries: AccessLogEntry[] = []
  write(entry: AccessLogEntry): void {
    this.entries.push(entry)
  }
  reopen(): void {}
  async close(): Promise<void> {}
}

export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

export function loopback(port: number): Endpoint {
  return { address: '127.0.0.1', port, family: 4 }
}

/** A loopback server whose handler gets each accepted socket; closed at teardown. */
export async function upstream(t: Test, onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('error', () => {})
    onSocket(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return { server, port: (server.address() as { port: number }).port }
}

export interface Harness {
  listener: VirtualListener
  stats: Stats
  accessLog: MemoryAccessLog
  recorder: Recorder
  /** where the next accepted connection "was headed"; undefined: not redirected */
  route(dst: Endpoint | undefined): void
  /** a client connection to the listener */
  client(): Socket
}

/** A virtualOutbound listener on 127.0.0.1 whose original destinations the test chooses. */
export async function outboundListener(t: Test, config: Partial<ProxyConfig> = {}): Promise<Harness> {
  const port = await freePort()
  const cfg: ProxyConfig = { ...defaultProxyConfig, relay: 'node', bindAddress: '127.0.0.1', outboundPort: port, inboundPort: 0, ...config }
  const stats = new Stats()
  const accessLog = new MemoryAccessLog()
  let next: Endpoint | undefined
  const listener = new VirtualListener('outbound', {
    config: cfg,
    stats,
    log: silent,
    loopGuard: new LoopGuard(),
    accessLog,
    fdBudget: new FdBudget(silent),
    router: { outboundPort: cfg.outboundPort, inboundPort: cfg.inboundPort, policy: cfg.outboundTrafficPolicy, registry: new Registry([]) },
    destination: () => next,
  })
  const recorder = new Recorder()
  listener.events.subscribe(recorder)
  await listener.listen()
  const clients: Socket[] = []
  t.teardown(async () => {
    for (const c of clients) c.destroy()
    await listener.stopAccepting()
    listener.abortAll()
    await listener.idle()
  })
  return {
    listener,
    stats,
    accessLog,
    recorder,
    route: (dst) => (next = dst),
    client: () => {
      const c = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      c.on('error', () => {})
      clients.push(c)
      return c
    },
  }
}

/** Everything a socket received until it closed, and the error it closed with; a FIN is answered with one. */
export function drain(s: Socket): Promise<{ bytes: Buffer; error: string | null }> {
  const chunks: Buffer[] = []
  let error: string | null = null
  s.on('data', (c: Buffer) => chunks.push(c))
  s.on('end', () => s.end())
  s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message))
  return new Promise((r) => s.once('close', () => r({ bytes: Buffer.concat(chunks), error })))
}
