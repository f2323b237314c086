// One traced DNS lookup from productpage's app: the trace table and `nft monitor` up, dig sent as the
// app's uid from a chosen source port, then the evidence (hops, conntrack with zones, the sidecar's
// counters, the lab DNS server's log) collected and the table removed whatever happened.
import { TraceError } from '../../errors.js'
import { dnsLogPath, labDns } from '../../lab/dns.js'
import { execIn } from '../../sys/netns.js'
import { appUser } from '../../lab/scene.js'
import type { LabState } from '../../lab/state.js'
import {
  counterDelta,
  logSize,
  readDnsCounters,
  readServerQueries,
  readUdpConntrack,
  type DnsCounters,
  type ServerQuery,
  type UdpEntry,
} from './evidence.js'
import { dnsHops, type DnsHop } from './hops.js'
import { installDnsTraceTable } from './table.js'
import { readIptablesRules } from '../capture/evidence.js'
import { TraceMonitor } from '../capture/monitor.js'
import { ownTable, removeTraceTable } from '../capture/nft-table.js'
import { parseTrace, traversals } from '../capture/parse.js'

export const tracedPod = 'productpage'

export interface DigResult {
  status: string
  answers: { name: string; ttl: number; type: string; data: string }[]
  server: string
}

export interface DnsRun {
  name: string
  client: string
  dig: DigResult
  hops: DnsHop[]
  /** the sidecar's dns.* counters that changed during the lookup */
  sidecar: DnsCounters
  /** where the answer came from, read off the counters and the DNS server's log */
  answeredBy: 'sidecar table' | 'sidecar forward' | 'DNS server directly (bypassed the sidecar)' | 'unknown'
  /** the sidecar's own upstream query's source port, from conntrack (undefined: it sent none) */
  sidecarUpstreamPort?: number
  conntrack: UdpEntry[]
  serverQueries: ServerQuery[]
  raw: string
}

export function parseDig(text: string): DigResult {
  const answers = text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 5)
    .map(([name, ttl, , type, data]) => ({ name: name!, ttl: Number(ttl), type: type!, data: data! }))
  return { status: /status: (\w+)/.exec(text)?.[1] ?? 'no answer', answers, server: /;; SERVER: (\S+)/.exec(text)?.[1] ?? '' }
}

async function dig(ns: string, ip: string, port: number, name: string): Promise<DigResult> {
  const argv = [
    'setpriv',
    `--reuid=${appUser.uid}`,
    `--regid=${appUser.gid}`,
    '--clear-groups',
    'dig',
    '-b',
    `${ip}#${port}`,
    '+tries=1',
    '+time=8',
    `@${labDns.ip}`,
    name,
    'A',
  ]
  const r = await execIn(ns, argv, { allowFailure: true, timeoutMs: 15_000 })
  return parseDig(r.stdout)
}

export function podNamespace(state: LabState): { ns: string; ip: string } {
  const p = state.pods[tracedPod]
  if (!p) throw new TraceError(`lab ${state.lab} has no pod ${tracedPod}`)
  return { ns: p.ns, ip: p.ip }
}

/** The sidecar's own upstream query in conntrack: to the DNS server, answered by it, not from the app's port. */
export function sidecarUpstreamEntries(entries: UdpEntry[], appPort: number): UdpEntry[] {
  return entries.filter((e) => e.original.dst === labDns.ip && e.original.dport === 53 && !e.nated && e.original.sport !== appPort)
}

/**
 * `nft monitor` subscribes a moment after it starts; on a busy machine the table can be added before that
 * and its event missed. Adding the table again (remove, add) gives a new event, so try a few times.
 */
async function subscribed(ns: string, monitor: TraceMonitor): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await monitor.ready(1500)
    } catch (err) {
      if (attempt === 5) throw err
      await installDnsTraceTable(ns)
    }
  }
}

export async function tracedLookup(state: LabState, name: string, port: number, signal?: AbortSignal): Promise<DnsRun> {
  const { ns, ip } = podNamespace(state)
  const before = await readDnsCounters(ns)
  const logFrom = logSize(dnsLogPath(state.lab))
  const monitor = new TraceMonitor(ns)
  let result: DigResult
  let raw: string
  try {
    await installDnsTraceTable(ns)
    await subscribed(ns, monitor)
    if (signal?.aborted) throw new TraceError('interrupted before the lookup was sent')
    result = await dig(ns, ip, port, name)
    await monitor.settle()
  } finally {
    await removeTraceTable(ns).catch(() => {})
    raw = await monitor.stop()
  }
  const after = await readDnsCounters(ns)
  const iptables = await readIptablesRules(ns, [
    { family: 'ip', table: 'raw' },
    { family: 'ip', table: 'nat' },
  ])
  const allCt = await readUdpConntrack(ns)
  const serverQueries = readServerQueries(dnsLogPath(state.lab), logFrom)
  const sidecar = counterDelta(before, after)
  const upstream = sidecarUpstreamEntries(allCt, port).filter((e) => serverQueries.some((q) => q.port === e.original.sport))
  const conntrack = allCt.filter((e) => e.original.sport === port || upstream.includes(e))
  const bypassed = serverQueries.some((q) => q.port === port)
  const answeredBy = bypassed
    ? 'DNS server directly (bypassed the sidecar)'
    : sidecar.answered_from_table
      ? 'sidecar table'
      : sidecar.forwarded
        ? 'sidecar forward'
        : 'unknown'
  const run: DnsRun = {
    name,
    client: `${ip}:${port}`,
    dig: result,
    hops: dnsHops(traversals(tracedPod, parseTrace(raw), ownTable), port, iptables),
    sidecar,
    answeredBy,
    conntrack,
    serverQueries,
    raw,
  }
  if (upstream[0]) run.sidecarUpstreamPort = upstream[0].original.sport
  return run
}
