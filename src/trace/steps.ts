// Traversals, access logs and conntrack -> the numbered steps. Connections are found as the walkthrough
// tells it: the app's connection; the sidecar that accepted it (its access log line names the peer) and
// the new connection it opened; and so on down the chain. Steps are ordered by cause, not by arrival:
// connection by connection, SYN before SYN-ACK, a packet's output hook before its prerouting hook.
import type { AccessLine, ConntrackEntry } from './evidence.js'
import type { Hit, PacketInfo, Traversal } from './parse.js'
import { destinationSource, tproxyRuleNote, type TraceMode } from './tproxy.js'

export interface Endpoints {
  src: string
  dst: string
}

export interface Step {
  n: number
  pod: string
  kind: 'netfilter' | 'sidecar'
  /** index into the report's connections */
  connection: number
  packet: Endpoints & { flags: string[] }
  /** the packet after this hook's NAT, when it changed */
  rewritten: Endpoints | null
  hook: 'output' | 'prerouting' | null
  table: string | null
  chain: string | null
  rule: string | null
  /** the same rule as `iptables -S` prints it, when iptables-nft manages the table */
  iptables: string | null
  verdict: string
  note: string | null
}

export interface Connection {
  index: number
  /** 'app', 'outbound sidecar' or 'inbound sidecar' */
  role: string
  /** the pod whose process opened it */
  pod: string
  client: string
  /** the destination its opener asked for */
  server: string
}

export interface TraceInput {
  from: string
  to: string
  /** the app's own socket (curl's local address and port) */
  client: string
  server: string
  traversals: Traversal[]
  access: AccessLine[]
  /** key `pod family table handle` */
  iptables: Map<string, string>
  sidecarPorts: number[]
  /** REDIRECT when absent */
  mode?: TraceMode
  /** TPROXY: each sidecar pod's policy routing, for the notes */
  routing?: Record<string, string[]>
}

export function endpoint(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`
}

/** Access logs and curl write IPv4-mapped and bracketed forms; compare without them. */
export function sameEndpoint(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/^\[?(::ffff:)?/, '').replace(/\]:/, ':')
  return norm(a) === norm(b)
}

export const ends = (p: PacketInfo): Endpoints => ({ src: endpoint(p.saddr, p.sport), dst: endpoint(p.daddr, p.dport) })
export const isReply = (p: PacketInfo) => p.flags.includes('ack')

/** The host part of an endpoint, without brackets or an IPv4-mapped prefix. */
const hostOf = (e: string) => e.replace(/^\[?(::ffff:)?/, '').replace(/\]?:\d+$/, '')

/**
 * The app's connection and the sidecars' connections that follow from it; then the called pod's own
 * outbound call (reviews -> ratings, as Bookinfo's reviews makes on each request), found as the access
 * line in that pod whose peer is the pod's own address, and the connection its sidecar opened for it.
 * Each accepted connection i is followed by the one its sidecar opened, at index i + 1.
 */
export function findConnections(input: TraceInput): { connections: Connection[]; accepts: Map<number, AccessLine> } {
  const connections: Connection[] = [{ index: 0, role: 'app', pod: input.from, client: input.client, server: input.server }]
  const accepts = new Map<number, AccessLine>()
  const follow = (start: number) => {
    for (let i = start; i < start + 4; i++) {
      const line = input.access.find((a) => sameEndpoint(a.downstreamRemote, connections[i]!.client))
      if (!line || line.upstreamLocal === '-') return
      accepts.set(i, line)
      // captured in the pod that opened it: outbound; in another pod: inbound
      const role = line.pod === connections[i]!.pod ? 'outbound sidecar' : 'inbound sidecar'
      connections.push({ index: i + 1, role, pod: line.pod, client: line.upstreamLocal, server: line.upstreamHost })
    }
  }
  follow(0)
  const known = (e: string) => connections.some((c) => sameEndpoint(c.client, e))
  const call = input.access.find((a) => a.pod === input.to && hostOf(a.downstreamRemote) === hostOf(input.server) && !known(a.downstreamRemote))
  if (call) {
    connections.push({ index: connections.length, role: 'app', pod: input.to, client: call.downstreamRemote, server: call.downstreamLocal })
    follow(connections.length - 1)
  }
  return { connections, accepts }
}

function connectionOf(t: Traversal, connections: Connection[]): number {
  const seen = [ends(t.before), ends(t.after)].flatMap((e) => [e.src, e.dst])
  return connections.findIndex((c) => seen.some((s) => sameEndpoint(s, c.client)))
}

function noHitNote(t: Traversal, all: Traversal[], i: number): string {
  if (isReply(t.before)) {
    const next = all[i + 1]
    const unNat = t.hook === 'output' && next && next.hook === 'prerouting' && isReply(next.before) && ends(next.before).src !== ends(t.after).src
    return unNat
      ? `reply: no nat chain runs; conntrack itself turns ${ends(t.after).src} back into ${ends(next.before).src} on the way out`
      : 'reply: no nat chain runs, conntrack knows the connection'
  }
  if (t.hook === 'prerouting' && t.before.iif === 'lo') return 'back in through lo: NAT was settled at OUTPUT, so the nat chains do not run again'
  return 'no nat chain in this hook'
}

function netfilterSteps(t: Traversal, conn: number, note: string | null, input: TraceInput): Omit<Step, 'n'>[] {
  const packet = { ...ends(t.before), flags: t.before.flags }
  const changed = ends(t.before).src !== ends(t.after).src || ends(t.before).dst !== ends(t.after).dst
  const rewritten = changed ? ends(t.after) : null
  const base = { pod: t.pod, kind: 'netfilter' as const, connection: conn, packet, hook: t.hook }
  if (t.hits.length === 0) {
    return [{ ...base, rewritten, table: null, chain: null, rule: null, iptables: null, verdict: 'accept', note }]
  }
  return t.hits.map((h: Hit, i) => ({
    ...base,
    rewritten: i === t.hits.length - 1 ? rewritten : null,
    table: `${h.family} ${h.table}`,
    chain: h.chain,
    rule: h.policy ? `policy ${h.verdict}` : (h.rule ?? (h.handle === null ? null : `handle ${h.handle}`)),
    iptables: h.handle === null ? null : (input.iptables.get(`${t.pod} ${h.family} ${h.table} ${h.handle}`) ?? null),
    verdict: h.verdict,
    note: /\bTPROXY\b/.test(h.rule ?? '') ? tproxyRuleNote(input.routing?.[t.pod], h.family) : null,
  }))
}

function sidecarStep(line: AccessLine, conn: Connection, next: Connection, listener: string | undefined, mode: TraceMode | undefined): Omit<Step, 'n'> {
  return {
    pod: line.pod, kind: 'sidecar', connection: conn.index,
    packet: { src: line.downstreamRemote, dst: listener ?? line.downstreamLocal, flags: [] }, rewritten: null,
    hook: null, table: null, chain: null, rule: null, iptables: null, verdict: 'new connection',
    note: `accepted ${line.downstreamRemote}${listener ? ` on ${listener}` : ''}; ` +
      `original destination ${line.downstreamLocal} (${line.pod !== conn.pod && mode === 'TPROXY' ? destinationSource(mode) : 'SO_ORIGINAL_DST'}); opened ${next.client} -> ${next.server} (${line.cluster})`,
  }
}

export function assembleSteps(input: TraceInput): { connections: Connection[]; steps: Step[] } {
  const { connections, accepts } = findConnections(input)
  const tagged = input.traversals
    .map((t) => ({ t, conn: connectionOf(t, connections) }))
    .filter((x) => x.conn >= 0)
    .sort((a, b) => a.conn - b.conn || Number(isReply(a.t.before)) - Number(isReply(b.t.before)) ||
      Number(a.t.hook === 'prerouting') - Number(b.t.hook === 'prerouting') || a.t.seq - b.t.seq)
  const ordered = tagged.map((x) => x.t)
  const steps: Omit<Step, 'n'>[] = []
  for (const c of connections) {
    tagged.forEach((x, i) => {
      if (x.conn !== c.index) return
      steps.push(...netfilterSteps(x.t, c.index, x.t.hits.length ? null : noHitNote(x.t, ordered, i), input))
    })
    const line = accepts.get(c.index)
    if (!line) continue
    const inbound = tagged.find((x) => x.conn === c.index && x.t.pod === line.pod && !isReply(x.t.after) && input.sidecarPorts.includes(x.t.after.dport))
    steps.push(sidecarStep(line, c, connections[c.index + 1]!, inbound ? ends(inbound.t.after).dst : undefined, input.mode))
  }
  return { connections, steps: steps.map((s, i) => ({ n: i + 1, ...s })) }
}

export function relevantConntrack(entries: ConntrackEntry[], connections: Connection[]): ConntrackEntry[] {
  return entries.filter((e) => connections.some((c) => sameEndpoint(endpoint(e.original.src, e.original.sport), c.client)))
}
