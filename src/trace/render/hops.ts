// Steps -> hops: one per packet per hook (the rules it hit folded together) or one per sidecar accept,
// each placed between two lanes of the diagram: who sent the packet, and whose socket received it.
import { formatEndpoint as fmt, sameEndpoint } from '../../net/address.js'
import type { TraceReport } from '../capture/report.js'
import { sidecarPorts } from '../capture/nft-table.js'
import type { Connection, Step } from '../capture/steps.js'
import { ranges } from './ranges.js'

export interface Hop {
  kind: 'packet' | 'sidecar'
  /** the step numbers, e.g. "1-3" */
  label: string
  fromLane: string
  toLane: string
  /** the other pod's netfilter lane, when the packet crossed the wire to get here */
  wireFrom: string | null
  title: string
  decision: string
  verdict: string
  chains: string[]
  /** the walkthrough steps its trace steps belong to, e.g. "w10-12" ('' when none) */
  walk: string
}

const isReply = (s: Step) => s.packet.flags.includes('ack')

function groups(steps: Step[]): Step[][] {
  const out: Step[][] = []
  for (const s of steps) {
    const last = out.at(-1)?.[0]
    const same =
      last &&
      s.kind === 'netfilter' &&
      last.kind === 'netfilter' &&
      last.pod === s.pod &&
      last.hook === s.hook &&
      sameEndpoint(last.packet.src, s.packet.src) &&
      sameEndpoint(last.packet.dst, s.packet.dst) &&
      isReply(last) === isReply(s)
    if (same) out.at(-1)!.push(s)
    else out.push([s])
  }
  return out
}

function opener(c: Connection): string {
  return `${c.pod}:${c.role === 'app' ? 'app' : 'sidecar'}`
}

/** Whose socket took the connection: the sidecar when a REDIRECT sent it to 15001/15006, else the app. */
function acceptor(group: Step[][], c: Connection): string {
  const syn = group.find((g) => g[0]!.connection === c.index && g[0]!.hook === 'prerouting' && !isReply(g[0]!))
  if (!syn) return `${c.pod}:app`
  const last = syn.at(-1)!
  const dst = [...syn].reverse().find((s) => s.rewritten)?.rewritten?.dst ?? last.packet.dst
  return `${last.pod}:${sidecarPorts.includes(dst.port) ? 'sidecar' : 'app'}`
}

function range(g: Step[]): string {
  return g.length === 1 ? `${g[0]!.n}` : `${g[0]!.n}-${g.at(-1)!.n}`
}

function shortNote(s: Step): string {
  if (s.unNat) return `no nat chain: reply; conntrack restores ${fmt(s.unNat.from)} → ${fmt(s.unNat.to)}`
  if (s.noChain === 'reply') return 'no nat chain: reply, conntrack already knows the connection'
  if (s.noChain === 'loopback') return 'no nat chain: back in via lo, NAT was settled at OUTPUT'
  return 'no nat chain'
}

function decision(g: Step[]): { text: string; verdict: string; chains: string[] } {
  const hits = g.filter((s) => s.chain)
  if (hits.length === 0) return { text: shortNote(g[0]!), verdict: 'accept', chains: [] }
  const chains = [...new Set(hits.map((s) => s.chain!))]
  const rules = hits.filter((s) => !s.rule?.startsWith('policy '))
  const key = rules.at(-1) ?? hits.at(-1)!
  // the chain path already ends with the deciding rule's chain
  const rule = key.iptables ? key.iptables.replace(/^-A \S+ /, '') : (key.rule ?? '')
  const rewritten = g.find((s) => s.rewritten)?.rewritten
  const to = rewritten ? `  (now → ${fmt(rewritten.dst)})` : ''
  return { text: `${chains.join(' › ')}:  ${rule}  ⇒ ${key.verdict}${to}`, verdict: key.verdict, chains }
}

function packetHop(g: Step[], all: Step[][], i: number, conns: Connection[]): Omit<Hop, 'walk'> {
  const s = g[0]!
  const c = conns[s.connection]!
  const nf = `${s.pod}:netfilter`
  const sender = isReply(s) ? acceptor(all, c) : opener(c)
  const receiver = isReply(s) ? opener(c) : acceptor(all, c)
  const prev = all[i - 1]?.[0]
  const crossed = s.hook === 'prerouting' && prev && prev.kind === 'netfilter' && prev.pod !== s.pod && prev.connection === s.connection
  const d = decision(g)
  const flags = s.packet.flags.map((f) => f.toUpperCase()).join('-')
  return {
    kind: 'packet',
    label: range(g),
    fromLane: s.hook === 'output' ? sender : nf,
    toLane: s.hook === 'output' ? nf : receiver,
    wireFrom: crossed ? `${prev.pod}:netfilter` : null,
    title: `${flags} ${fmt(s.packet.src)} → ${fmt(s.packet.dst)}   (${s.pod}, ${s.hook === 'output' ? 'OUTPUT' : 'PREROUTING'} hook)`,
    decision: d.text,
    verdict: d.verdict,
    chains: d.chains,
  }
}

function walkLabel(g: Step[]): string {
  const ws = [...new Set(g.flatMap((s) => s.walk ?? []))].sort((a, b) => a - b)
  return ws.length ? `w${ranges(ws)}` : ''
}

export function hops(report: TraceReport): Hop[] {
  const all = groups(report.steps)
  return all.map((g, i): Hop => ({ ...hop(g, all, i, report), walk: walkLabel(g) }))
}

function hop(g: Step[], all: Step[][], i: number, report: TraceReport): Omit<Hop, 'walk'> {
  const s = g[0]!
  if (s.kind === 'netfilter') return packetHop(g, all, i, report.connections)
  const a = s.accept
  return {
    kind: 'sidecar',
    label: range(g),
    fromLane: `${s.pod}:sidecar`,
    toLane: `${s.pod}:sidecar`,
    wireFrom: null,
    title: `${s.pod} sidecar accepts ${fmt(s.packet.src)} on ${fmt(s.packet.dst)}`,
    decision: `original dst ${a ? fmt(a.originalDst) : '?'} (SO_ORIGINAL_DST); new socket ${a ? fmt(a.opened.src) : '?'} → ${a ? fmt(a.opened.dst) : '?'}`,
    verdict: 'new connection',
    chains: [],
  }
}
