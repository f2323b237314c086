// `nft monitor trace` text -> one record per packet per hook traversal. The kernel's trace is the only
// source of truth for which chains a packet went through; everything else in `trace` is read off these.

/** The fields of a traced packet the steps need: its 4-tuple, interface and TCP flags. */
export interface PacketInfo {
  family: 'ip' | 'ip6'
  saddr: string
  daddr: string
  sport: number
  dport: number
  /** e.g. ['syn'] or ['syn', 'ack'] */
  flags: string[]
  iif?: string
  oif?: string
}

export interface TraceEvent {
  id: string
  family: string
  table: string
  chain: string
  kind: 'packet' | 'rule' | 'policy' | 'verdict'
  /** the rule as nft prints it, counters removed; absent when nft did not know the rule ("unknown rule") */
  rule?: string
  handle?: number
  /** accept, continue, return, jump CHAIN, drop ... */
  verdict?: string
  packet?: PacketInfo
  /** the packet's mark (skb->mark) where nft printed it (policy and verdict lines: `meta mark 0x...`, when not 0) */
  mark?: number
}

/** nft appends `meta mark 0x00000539` to a policy or verdict line when the packet carries a mark. */
export function markOf(text: string): number | undefined {
  const m = / meta mark (0x[0-9a-f]+)\b/i.exec(text)
  return m ? parseInt(m[1]!, 16) : undefined
}

const lineRe = /^trace id (\S+) (\S+) (\S+) (\S+) (packet|rule|unknown rule|policy|verdict):? ?(.*)$/

const flagBits: Array<[number, string]> = [
  [0x01, 'fin'],
  [0x02, 'syn'],
  [0x04, 'rst'],
  [0x08, 'psh'],
  [0x10, 'ack'],
  [0x20, 'urg'],
  [0x40, 'ecn'],
  [0x80, 'cwr'],
]

/** nft prints a single flag by name (`syn`) and combinations as hex (`0x12`) or `syn | ack`. */
export function parseFlags(text: string): string[] {
  const t = text.trim()
  if (/^0x[0-9a-f]+$/i.test(t)) {
    const bits = parseInt(t, 16)
    return flagBits.filter(([bit]) => bits & bit).map(([, name]) => name)
  }
  return t.split(/[\s|,]+/).filter(Boolean)
}

function field(text: string, name: string): string | undefined {
  const m = new RegExp(`(?:^| )${name} (\\S+)`).exec(text)
  return m?.[1]?.replace(/^"|"$/g, '')
}

export function parsePacket(text: string): PacketInfo | undefined {
  const ip6 = / ip6 saddr /.test(text)
  const saddr = field(text, ip6 ? 'ip6 saddr' : 'ip saddr')
  const daddr = field(text, ip6 ? 'ip6 daddr' : 'ip daddr')
  // UDP too: trace --dns follows DNS queries (src/trace/dns/)
  const sport = field(text, 'tcp sport') ?? field(text, 'udp sport')
  const dport = field(text, 'tcp dport') ?? field(text, 'udp dport')
  if (!saddr || !daddr || !sport || !dport) return undefined
  const flags = /tcp flags == (.+?)(?: tcp |$)/.exec(text.trim())
  const packet: PacketInfo = {
    family: ip6 ? 'ip6' : 'ip',
    saddr,
    daddr,
    sport: Number(sport),
    dport: Number(dport),
    flags: flags ? parseFlags(flags[1]!) : [],
  }
  const iif = field(text, 'iif')
  const oif = field(text, 'oif')
  if (iif) packet.iif = iif
  if (oif) packet.oif = oif
  return packet
}

/** Counters change on every run and say nothing about the path; they would only make rules differ. */
export function cleanRule(rule: string): string {
  return rule
    .replace(/\s*counter packets \d+ bytes \d+/g, '')
    .replace(/\s+/g, ' ')
    .trim()
}

export function parseLine(line: string): TraceEvent | undefined {
  const m = lineRe.exec(line.trimEnd())
  if (!m) return undefined
  const [, id, family, table, chain, what, rest = ''] = m
  const base = { id: id!, family: family!, table: table!, chain: chain! }
  if (what === 'packet') return { ...base, kind: 'packet', ...optional('packet', parsePacket(rest)) }
  if (what === 'policy' || what === 'verdict') return { ...base, kind: what, verdict: rest.trim(), ...optional('mark', markOf(rest)) }
  // rule TEXT [# handle N] (verdict V)   or   unknown rule handle N (verdict V)
  const r = /^(.*?)\s*(?:#\s*)?(?:handle (\d+))?\s*\(verdict ([^)]+)\)$/.exec(rest.trim())
  if (!r) return { ...base, kind: 'rule', rule: cleanRule(rest) }
  const event: TraceEvent = { ...base, kind: 'rule', verdict: r[3]!.trim() }
  const text = what === 'rule' ? cleanRule(r[1]!) : ''
  if (text) event.rule = text
  if (r[2]) event.handle = Number(r[2])
  return event
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>)
}

export function parseTrace(text: string): TraceEvent[] {
  return text.split('\n').flatMap((l) => parseLine(l) ?? [])
}

/** One chain rule a packet hit (or the chain's policy), outside the trace's own table. */
export interface Hit {
  family: string
  table: string
  chain: string
  rule: string | null
  handle: number | null
  verdict: string
  policy: boolean
  /** the mark nft printed with a policy line (absent: not printed, i.e. 0, or a rule line) */
  mark?: number
}

/** One packet's pass through one hook (output or prerouting) in one pod. */
export interface Traversal {
  pod: string
  hook: 'prerouting' | 'output'
  id: string
  /** the packet as the first hook priority saw it, before any NAT */
  before: PacketInfo
  /** as the last priority saw it, after nat's chains ran (equal to before when nothing rewrote it) */
  after: PacketInfo
  hits: Hit[]
  /** order of arrival among all traversals, a tiebreak only */
  seq: number
  /** the packet's mark as our first-priority chain saw it, and as the last one did (0 when nft printed none) */
  markBefore?: number
  markAfter?: number
}

export interface OwnTable {
  name: string
  /** our first-priority chains -> the hook they sit on; the -after chains only report the rewritten packet */
  first: Record<string, 'prerouting' | 'output'>
  last: Record<string, 'prerouting' | 'output'>
}

/**
 * Events of one pod -> traversals. A traversal starts where our first-priority chain prints the packet;
 * the same trace id then runs through nat's chains and ends in our last-priority chain. Ids are per skb
 * and a looped-back packet gets a new one, so an id alone does not name a packet for long.
 */
export function traversals(pod: string, events: TraceEvent[], own: OwnTable, seq = { n: 0 }): Traversal[] {
  const out: Traversal[] = []
  const open = new Map<string, Traversal>()
  for (const e of events) {
    const mine = e.table === own.name
    if (mine && e.kind === 'packet' && e.packet && own.first[e.chain]) {
      const t: Traversal = { pod, hook: own.first[e.chain]!, id: e.id, before: e.packet, after: e.packet, hits: [], seq: seq.n++ }
      open.set(e.id, t)
      out.push(t)
      continue
    }
    const t = open.get(e.id)
    if (!t) continue
    if (mine) {
      if (e.kind === 'packet' && e.packet && own.last[e.chain]) t.after = e.packet
      if (e.kind === 'policy' && own.first[e.chain]) t.markBefore = e.mark ?? 0
      if (e.kind === 'policy' && own.last[e.chain]) t.markAfter = e.mark ?? 0
      continue
    }
    if (e.kind === 'rule' || e.kind === 'policy') {
      t.hits.push({
        ...optional('mark', e.mark),
        family: e.family,
        table: e.table,
        chain: e.chain,
        rule: e.rule ?? null,
        handle: e.handle ?? null,
        verdict: e.verdict ?? '',
        policy: e.kind === 'policy',
      })
    }
  }
  return out
}
