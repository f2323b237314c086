// What `trace --dns` reads besides the kernel's trace: conntrack's UDP entries with their zones, the
// sidecar's DNS counters (did it answer from its table or forward?) and the lab DNS server's query log
// (who really asked it, from which port).
import { existsSync, readFileSync, statSync } from 'node:fs'
import { execIn } from '../../sys/netns.js'
import { conntrackTuples, type Tuple } from '../capture/evidence.js'

export interface UdpEntry {
  zone: number
  original: Tuple
  reply: Tuple
  /** the reply is not the original turned round: NAT (the REDIRECT to 15053) rewrote it */
  nated: boolean
  line: string
}

export function parseUdpConntrack(text: string): UdpEntry[] {
  return text.split('\n').flatMap((raw) => {
    const line = raw.trim().replace(/\s+/g, ' ')
    if (!line.startsWith('udp')) return []
    const tuples = conntrackTuples(line)
    if (!tuples) return []
    return [{ zone: Number(/\bzone=(\d+)/.exec(line)?.[1] ?? 0), ...tuples, line }]
  })
}

export async function readUdpConntrack(ns: string): Promise<UdpEntry[]> {
  const r = await execIn(ns, ['conntrack', '-L', '-p', 'udp'], { allowFailure: true })
  return parseUdpConntrack(r.stdout)
}

export type DnsCounters = Record<string, number>

/** The sidecar's dns.* counters from its admin port, pod-local. */
export async function readDnsCounters(ns: string): Promise<DnsCounters> {
  const r = await execIn(ns, ['curl', '-s', '--max-time', '3', 'http://127.0.0.1:15000/stats?filter=%5Edns%5C.'], { allowFailure: true })
  const out: DnsCounters = {}
  for (const m of r.stdout.matchAll(/^dns\.(\w+): (\d+)$/gm)) out[m[1]!] = Number(m[2])
  return out
}

export function counterDelta(before: DnsCounters, after: DnsCounters): DnsCounters {
  const out: DnsCounters = {}
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0)
  return out
}

export interface ServerQuery {
  client: string
  port: number
  type: string
  name: string
}

export function logSize(file: string): number {
  return existsSync(file) ? statSync(file).size : 0
}

/** dnsmasq's log-queries=extra lines since `from`: `N 198.18.0.10/41348 query[A] db.lab.test from 198.18.0.10`. */
export function readServerQueries(file: string, from: number): ServerQuery[] {
  if (!existsSync(file)) return []
  const text = readFileSync(file).subarray(from).toString('utf8')
  return [...text.matchAll(/ \d+ ([0-9a-f.:]+)\/(\d+) query\[(\w+)\] (\S+) from /g)].map((m) => ({
    client: m[1]!,
    port: Number(m[2]),
    type: m[3]!,
    name: m[4]!,
  }))
}
