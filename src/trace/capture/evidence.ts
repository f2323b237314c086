// What the trace is checked against besides the kernel's trace: the sidecars' access logs (the two
// 4-tuples of each proxied connection), conntrack's table (which connection was NATed) and the iptables
// view of the nat rules (so a trace line can be shown as the `-A ...` rule the walkthrough quotes).
import { execIn } from '../../sys/netns.js'
import { parseOptionalEndpoint, type Endpoint } from '../../net/address.js'

/** One access log line's addresses; null where the sidecar logged '-' (no upstream, say). */
export interface AccessLine {
  pod: string
  cluster: string
  upstreamHost: Endpoint | null
  /** the sidecar's own socket on its new connection */
  upstreamLocal: Endpoint | null
  /** the original destination the sidecar recovered (SO_ORIGINAL_DST) */
  downstreamLocal: Endpoint | null
  /** the peer that connected to the sidecar */
  downstreamRemote: Endpoint | null
}

type AddressFields = Record<'upstreamHost' | 'upstreamLocal' | 'downstreamLocal' | 'downstreamRemote', string | null | undefined>

/** A line whose addresses do not parse is not one of our sidecar's lines: skipped, like any other stray line. */
function accessLine(pod: string, cluster: string, a: AddressFields): AccessLine | undefined {
  try {
    const at = (v: string | null | undefined) => parseOptionalEndpoint(v ?? '-')
    return {
      pod,
      cluster,
      upstreamHost: at(a.upstreamHost),
      upstreamLocal: at(a.upstreamLocal),
      downstreamLocal: at(a.downstreamLocal),
      downstreamRemote: at(a.downstreamRemote),
    }
  } catch {
    return undefined
  }
}

/** Istio's text format (the five fields before the trailing "- -") or the JSON format. */
export function parseAccessLine(pod: string, line: string): AccessLine | undefined {
  if (line.startsWith('{')) {
    let j: Record<string, string | null>
    try {
      j = JSON.parse(line) as Record<string, string | null>
    } catch {
      return undefined
    }
    return accessLine(pod, j.upstream_cluster ?? '-', {
      upstreamHost: j.upstream_host,
      upstreamLocal: j.upstream_local_address,
      downstreamLocal: j.downstream_local_address,
      downstreamRemote: j.downstream_remote_address,
    })
  }
  const m = /"([^"]*)" (\S+) (\S+) (\S+) (\S+) \S+ \S+$/.exec(line.trim())
  if (!m) return undefined
  return accessLine(pod, m[2]!, { upstreamHost: m[1], upstreamLocal: m[3], downstreamLocal: m[4], downstreamRemote: m[5] })
}

export interface Tuple {
  src: string
  dst: string
  sport: number
  dport: number
}

export interface ConntrackEntry {
  pod: string
  state: string
  original: Tuple
  reply: Tuple
  /** the reply is not the original turned round: NAT rewrote one side */
  nated: boolean
  line: string
}

function tupleAt(line: string, n: number): Tuple | undefined {
  const get = (k: string) => [...line.matchAll(new RegExp(`\\b${k}=(\\S+)`, 'g'))][n]?.[1]
  const [src, dst, sport, dport] = [get('src'), get('dst'), get('sport'), get('dport')]
  if (!src || !dst || !sport || !dport) return undefined
  return { src, dst, sport: Number(sport), dport: Number(dport) }
}

/** A conntrack line's original and reply tuples, and whether NAT rewrote one side (TCP and UDP alike). */
export function conntrackTuples(line: string): { original: Tuple; reply: Tuple; nated: boolean } | undefined {
  const original = tupleAt(line, 0)
  const reply = tupleAt(line, 1)
  if (!original || !reply) return undefined
  const nated = reply.src !== original.dst || reply.sport !== original.dport || reply.dst !== original.src || reply.dport !== original.sport
  return { original, reply, nated }
}

export function parseConntrack(pod: string, text: string): ConntrackEntry[] {
  return text.split('\n').flatMap((raw) => {
    const line = raw.trim()
    if (!line.startsWith('tcp')) return []
    const tuples = conntrackTuples(line)
    if (!tuples) return []
    const state = /^tcp\s+\d+\s+\d+\s+([A-Z_]+)/.exec(line)?.[1] ?? ''
    return [{ pod, state, ...tuples, line: line.replace(/\s+/g, ' ') }]
  })
}

export async function readConntrack(pod: string, ns: string): Promise<ConntrackEntry[]> {
  const r = await execIn(ns, ['conntrack', '-L', '-p', 'tcp'], { allowFailure: true })
  return parseConntrack(pod, r.stdout)
}

/** `nft -a list table` -> chain -> rule handles in order (the order iptables -S lists the same rules in). */
export function handlesByChain(listing: string): Map<string, number[]> {
  const chains = new Map<string, number[]>()
  let current: number[] | undefined
  for (const line of listing.split('\n')) {
    const chain = /^\s*chain (\S+) \{/.exec(line)
    if (chain) chains.set(chain[1]!, (current = []))
    else if (/^\s*\}/.test(line)) current = undefined
    else {
      const h = /# handle (\d+)\s*$/.exec(line)
      if (h && current) current.push(Number(h[1]))
    }
  }
  return chains
}

/** `iptables -S` -> chain -> its -A lines in order. */
export function appendsByChain(save: string): Map<string, string[]> {
  const chains = new Map<string, string[]>()
  for (const line of save.split('\n')) {
    const m = /^-A (\S+) /.exec(line)
    if (m) chains.set(m[1]!, [...(chains.get(m[1]!) ?? []), line.trim()])
  }
  return chains
}

/** handle -> iptables rule, for a chain listed both ways; chains whose lengths differ are left out. */
export function iptablesByHandle(listing: string, save: string): Map<number, string> {
  const out = new Map<number, string>()
  const appends = appendsByChain(save)
  for (const [chain, handles] of handlesByChain(listing)) {
    const rules = appends.get(chain)
    if (!rules || rules.length !== handles.length) continue
    handles.forEach((h, i) => out.set(h, rules[i]!))
  }
  return out
}

/** Key `family table handle`; only the tables iptables-nft manages (nat here) have an iptables form. */
export async function readIptablesRules(ns: string, tables: Array<{ family: string; table: string }>): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const { family, table } of tables) {
    if (family !== 'ip' && family !== 'ip6') continue
    const listing = await execIn(ns, ['nft', '-a', 'list', 'table', family, table], { allowFailure: true })
    const save = await execIn(ns, [family === 'ip' ? 'iptables' : 'ip6tables', '-t', table, '-S'], { allowFailure: true })
    if (listing.code !== 0 || save.code !== 0) continue
    for (const [h, rule] of iptablesByHandle(listing.stdout, save.stdout)) out.set(`${family} ${table} ${h}`, rule)
  }
  return out
}
