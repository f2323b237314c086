// DNS test helpers: a real dnsmasq as the upstream (the lab's kube-dns stand-in), free ports, and a client
// that sends one query over UDP or TCP and decodes the reply with dns-packet.
import { spawn, type ChildProcess } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import dnsPacket from 'dns-packet'
import type { DecodedPacket, Packet } from 'dns-packet'
import type { Test } from 'tap'
import { defaultDnsConfig, type DnsConfig } from '../../src/dns/config.js'
import { DnsServer } from '../../src/dns/server.js'
import { silentLogger } from '../../src/logger.js'
import type { RegistryEntry } from '../../src/registry/registry.js'
import { Stats } from '../../src/stats/stats.js'

/** A port free for both UDP and TCP on 127.0.0.1 (the kernel picks it for UDP; TCP is checked). */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4')
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r))
    const port = s.address().port
    s.close()
    const tcpFree = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1')
      c.on('connect', () => (c.destroy(), resolve(false)))
      c.on('error', () => resolve(true))
    })
    if (tcpFree) return port
  }
}

/** dnsmasq on 127.0.0.1:port, answering only from its own records (no upstream of its own). */
export async function startDnsmasq(t: Test, port: number, records: string[]): Promise<ChildProcess> {
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--pid-file=',
    '--user=root',
    '--log-facility=-',
    '--cache-size=0',
    ...records,
  ]
  const child = spawn('dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  t.teardown(() => void child.kill())
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${err}`)
    try {
      await query('udp', port, { name: 'probe.invalid', type: 'A' }, 200)
      return child
    } catch {
      await sleep(50)
    }
  }
  throw new Error(`dnsmasq did not answer on ${port}: ${err}`)
}

export interface Q {
  name: string
  type?: string
  id?: number
  host?: string
}

export function queryPacket(q: Q): Buffer {
  const packet: Packet = {
    type: 'query',
    id: q.id ?? Math.floor(Math.random() * 65535),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: q.name, type: (q.type ?? 'A') as 'A', class: 'IN' }],
  }
  return dnsPacket.encode(packet)
}

/** dns-packet decodes rcode and each answer's data, which its types leave out. */
export type Reply = Omit<DecodedPacket, 'answers'> & {
  rcode: string
  answers?: { type: string; name: string; ttl?: number; data?: unknown }[]
}

export function query(proto: 'udp' | 'tcp', port: number, q: Q, timeoutMs = 3000): Promise<Reply> {
  return sendRaw(proto, port, queryPacket(q), timeoutMs, q.host).then((b) => dnsPacket.decode(b) as Reply)
}

export function sendRaw(proto: 'udp' | 'tcp', port: number, raw: Buffer, timeoutMs = 3000, host = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no ${proto} answer on ${host}:${port} within ${timeoutMs} ms`)), timeoutMs)
    let close = () => {}
    const finish = (err: Error | null, b?: Buffer) => {
      clearTimeout(timer)
      close()
      if (err) reject(err)
      else resolve(b!)
    }
    if (proto === 'udp') {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4')
      close = () => s.close()
      s.on('message', (m) => finish(null, m))
      s.on('error', (e) => finish(e))
      s.send(raw, port, host)
      return
    }
    const c = connect(port, host)
    close = () => c.destroy()
    let buf = Buffer.alloc(0)
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(null, buf.subarray(2, 2 + buf.readUInt16BE(0)))
    })
    c.on('error', (e) => finish(e))
    c.on('close', () => finish(new Error('connection closed without an answer')))
    const head = Buffer.alloc(2)
    head.writeUInt16BE(raw.length)
    c.write(Buffer.concat([head, raw]))
  })
}

export function addresses(p: { answers?: { type: string; data?: unknown }[] | undefined }, type = 'A'): string[] {
  return (p.answers ?? []).filter((a) => a.type === type).map((a) => String((a as { data: unknown }).data))
}

/** The DNS proxy alone on a free port (retrying should another process take the port first), closed at teardown. */
export async function startDnsServer(
  t: Test,
  config: Partial<DnsConfig>,
  registry: RegistryEntry[] = [],
): Promise<{ dns: DnsServer; port: number; stats: Stats }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const stats = new Stats()
    const dns = new DnsServer({ ...defaultDnsConfig, ...config, port }, registry, stats, silentLogger)
    try {
      await dns.start()
    } catch (err) {
      if (attempt < 5 && (err as { cause?: { code?: string } }).cause?.code === 'EADDRINUSE') continue
      throw err
    }
    t.teardown(() => dns.close())
    return { dns, port, stats }
  }
}

/** Real dig against 127.0.0.1:port, one try; its exit code and output (dig prints mismatches to stdout). */
export function dig(port: number, args: string[], timeoutS = 2): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', `+timeout=${timeoutS}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (out += d))
    child.on('close', (code) => resolve({ code, out }))
  })
}
