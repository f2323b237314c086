// The DNS trace's traversals -> hops: each packet's pass through a hook in productpage, named by its
// role in the lookup (the app's query, the sidecar's upstream query, their replies), with every rule it
// hit in the raw and nat tables, the iptables form of each, and what NAT rewrote.
import type { Hit, PacketInfo, Traversal } from '../capture/parse.js'
import { endpointOf, formatEndpoint } from '../../net/address.js'

export interface DnsHit {
  /** numbered across the whole lookup, as the text prints them */
  step: number
  table: string
  chain: string
  rule: string | null
  iptables: string | null
  verdict: string
}

export interface DnsHop {
  n: number
  role: string
  hook: 'output' | 'prerouting'
  packet: { src: string; dst: string; iif?: string; oif?: string }
  rewritten: { src: string; dst: string } | null
  hits: DnsHit[]
  note: string | null
}

const ends = (p: PacketInfo) => ({ src: formatEndpoint(endpointOf(p.saddr, p.sport)), dst: formatEndpoint(endpointOf(p.daddr, p.dport)) })

export function roleOf(t: Traversal, appPort: number): string {
  const p = t.before
  if (t.hook === 'output') {
    if (p.dport === 53 && p.sport === appPort) return "app's query"
    if (p.sport === 15053) return "sidecar's answer to the app"
    if (p.dport === 53) return "sidecar's upstream query"
  } else {
    if (p.dport === 15053) return "app's query arriving at the sidecar"
    if (p.sport === 53 && p.dport === appPort)
      return p.iif === 'lo' ? 'the answer arriving at the app (through lo)' : 'the answer arriving at the app (from the DNS server)'
    if (p.sport === 53) return "the DNS server's reply to the sidecar"
  }
  return 'other DNS packet'
}

function note(t: Traversal, hits: Hit[]): string | null {
  const nat = hits.some((h) => h.table === 'nat')
  if (nat) return null
  const p = t.before
  const replyLike = t.hook === 'output' ? p.sport === 15053 : p.sport === 53 || p.sport === 15053
  if (t.hook === 'prerouting' && t.before.iif === 'lo') return 'back in through lo: NAT was settled at OUTPUT, no nat chain runs again'
  if (replyLike) return 'a reply: no nat chain runs, conntrack turns the addresses back'
  return "no nat chain ran: conntrack already had an entry for this flow, and NAT runs only for a flow's first packet"
}

/** xt_CT leaves a packet alone once it carries a conntrack template: the first CT rule it meets decides the zone. */
function ctNote(hits: { iptables: string | null; rule: string | null }[], t: Traversal): string | null {
  const ct = hits.filter((h) => /-j CT --zone (\d+)/.test(h.iptables ?? ''))
  // Looped back through lo, the packet still carries the conntrack entry OUTPUT gave it.
  if (ct.length && t.hook === 'prerouting' && t.before.iif === 'lo')
    return 'the packet kept the conntrack entry it had at OUTPUT, so this CT rule changes nothing'
  if (ct.length < 2) return null
  const zone = /--zone (\d+)/.exec(ct[0]!.iptables!)![1]
  return `${ct.length} CT rules matched: the first one attached zone ${zone}; CT does nothing to a packet that already has its template, so the later ones change nothing`
}

/** `iptables` maps `family table handle` to the rule as iptables -S prints it. */
export function dnsHops(traversals: Traversal[], appPort: number, iptables: Map<string, string>): DnsHop[] {
  let step = 0
  const hops = traversals.map((t): Omit<DnsHop, 'n'> => {
    const hits = t.hits.map((h) => ({
      step: ++step,
      table: h.table,
      chain: h.chain,
      rule: h.policy ? null : h.rule,
      verdict: h.verdict,
      iptables: h.handle === null ? null : (iptables.get(`${h.family} ${h.table} ${h.handle}`) ?? null),
    }))
    const before = ends(t.before)
    const after = ends(t.after)
    const packet: DnsHop['packet'] = { ...before }
    if (t.before.iif) packet.iif = t.before.iif
    if (t.before.oif) packet.oif = t.before.oif
    return {
      role: roleOf(t, appPort),
      hook: t.hook,
      packet,
      rewritten: before.src !== after.src || before.dst !== after.dst ? after : null,
      hits,
      note: [note(t, t.hits), ctNote(hits, t)].filter(Boolean).join('; ') || null,
    }
  })
  return hops.map((h, i) => ({ n: i + 1, ...h }))
}
