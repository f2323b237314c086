// Traversals, access logs and conntrack -> the numbered steps. Connections are found as the walkthrough
// tells it: the app's connection; the sidecar that accepted it (its access log line names the peer) and
// the new connection it opened; and so on down the chain. Steps are ordered by cause, not by arrival:
// connection by connection, SYN before SYN-ACK, a packet's output hook before its prerouting hook.
// Every address here is an Endpoint (src/net/address.ts): the renderers format them, nobody parses text back.
import { endpointOf, formatEndpoint as fmt, sameEndpoint, type Endpoint } from '../../net/address.js'
import type { AccessLine, ConntrackEntry } from './evidence.js'
import type { Hit, PacketInfo, Traversal } from './parse.js'
import { destinationSource, tproxyRuleNote, type TraceMode } from './tproxy.js'

export interface Endpoints {
  src: Endpoint
  dst: Endpoint
}

export interface Packet extends Endpoints {
  /** e.g. ['syn'] or ['syn', 'ack'] */
  flags: string[]
}

/** Why no nat chain ran for a packet (a step without a rule hit). */
export type NoChain = 'reply' | 'loopback' | 'no nat chain'

/** A sidecar step: what its access log line and the trace say about one accepted connection. */
export interface SidecarAccept {
  /** the peer that connected */
  peer: Endpoint
  /** the sidecar's listener the redirected SYN reached, when the trace saw it */
  listener: Endpoint | null
  /** the destination the sidecar recovered */
  originalDst: Endpoint
  /** how it recovered it: SO_ORIGINAL_DST, or (TPROXY) the accepted socket's own local address */
  destinationSource: 'SO_ORIGINAL_DST' | 'socket'
  /** the sidecar's own new connection: its socket and where it dialled */
  opened: Endpoints
  cluster: string
}

export interface Step {
  n: number
  pod: string
  kind: 'netfilter' | 'sidecar'
  /** index into the report's connections */
  connection: number
  packet: Packet
  /** the packet after this hook's NAT, when it changed */
  rewritten: Endpoints | null
  hook: 'output' | 'prerouting' | null
  table: string | null
  chain: string | null
  rule: string | null
  /** the same rule as `iptables -S` prints it, when iptables-nft manages the table */
  iptables: string | null
  verdict: string
  /** a netfilter step with no rule hit: why no nat chain ran */
  noChain: NoChain | null
  /** a reply whose addresses conntrack itself turned back on the way out: from what, into what */
  unNat: { from: Endpoint; to: Endpoint } | null
  /** a sidecar step's accepted connection */
  accept: SidecarAccept | null
  /** the walkthrough step (1-15) this step belongs to, null when its connection plays no part in the story */
  walk: number | null
  /** the above in words, for the text and JSON outputs */
  note: string | null
}

export interface Connection {
  index: number
  /** 'app', 'outbound sidecar' or 'inbound sidecar' */
  role: string
  /** the pod whose process opened it */
  pod: string
  client: Endpoint
  /** the destination its opener asked for */
  server: Endpoint
}

export interface TraceInput {
  from: string
  to: string
  /** the app's own socket (curl's local address and port) */
  client: Endpoint
  server: Endpoint
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

export const ends = (p: PacketInfo): Endpoints => ({ src: endpointOf(p.saddr, p.sport), dst: endpointOf(p.daddr, p.dport) })
export const sameEnds = (a: Endpoints, b: Endpoints) => sameEndpoint(a.src, b.src) && sameEndpoint(a.dst, b.dst)
export const isReply = (p: PacketInfo) => p.flags.includes('ack')

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
      if (!line?.downstreamRemote || !line.upstreamLocal || !line.upstreamHost) return
      accepts.set(i, line)
      // captured in the pod that opened it: outbound; in another pod: inbound
      const role = line.pod === connections[i]!.pod ? 'outbound sidecar' : 'inbound sidecar'
      connections.push({ index: i + 1, role, pod: line.pod, client: line.upstreamLocal, server: line.upstreamHost })
    }
  }
  follow(0)
  const known = (e: Endpoint) => connections.some((c) => sameEndpoint(c.client, e))
  const call = input.access.find(
    (a) => a.pod === input.to && a.downstreamRemote?.address === input.server.address && !known(a.downstreamRemote),
  )
  if (call?.downstreamRemote && call.downstreamLocal) {
    connections.push({ index: connections.length, role: 'app', pod: input.to, client: call.downstreamRemote, server: call.downstreamLocal })
    follow(connections.length - 1)
  }
  return { connections, accepts }
}

function connectionOf(t: Traversal, connections: Connection[]): number {
  const seen = [ends(t.before), ends(t.after)].flatMap((e) => [e.src, e.dst])
  return connections.findIndex((c) => seen.some((s) => sameEndpoint(s, c.client)))
}

type NoHit = Pick<Step, 'noChain' | 'unNat' | 'note'>

function noHit(t: Traversal, all: Traversal[], i: number): NoHit {
  if (isReply(t.before)) {
    const next = all[i + 1]
    const unNat =
      t.hook === 'output' &&
      next &&
      next.hook === 'prerouting' &&
      isReply(next.before) &&
      !sameEndpoint(ends(next.before).src, ends(t.after).src)
        ? { from: ends(t.after).src, to: ends(next!.before).src }
        : null
    const note = unNat
      ? `reply: no nat chain runs; conntrack itself turns ${fmt(unNat.from)} back into ${fmt(unNat.to)} on the way out`
      : 'reply: no nat chain runs, conntrack knows the connection'
    return { noChain: 'reply', unNat, note }
  }
  if (t.hook === 'prerouting' && t.before.iif === 'lo') {
    return { noChain: 'loopback', unNat: null, note: 'back in through lo: NAT was settled at OUTPUT, so the nat chains do not run again' }
  }
  return { noChain: 'no nat chain', unNat: null, note: 'no nat chain in this hook' }
}

const noAccept = { accept: null, walk: null } as const

/** all, i: every traversal in order, and t's place in it (a reply's un-NAT shows in the next one) */
export function netfilterSteps(t: Traversal, conn: number, input: TraceInput, all: Traversal[], i: number): Omit<Step, 'n'>[] {
  const packet = { ...ends(t.before), flags: t.before.flags }
  const rewritten = sameEnds(ends(t.before), ends(t.after)) ? null : ends(t.after)
  const base = { pod: t.pod, kind: 'netfilter' as const, connection: conn, packet, hook: t.hook, ...noAccept }
  if (t.hits.length === 0) {
    return [{ ...base, rewritten, table: null, chain: null, rule: null, iptables: null, verdict: 'accept', ...noHit(t, all, i) }]
  }
  return t.hits.map((h: Hit, k) => ({
    ...base,
    rewritten: k === t.hits.length - 1 ? rewritten : null,
    table: `${h.family} ${h.table}`,
    chain: h.chain,
    rule: h.policy ? `policy ${h.verdict}` : (h.rule ?? (h.handle === null ? null : `handle ${h.handle}`)),
    iptables: h.handle === null ? null : (input.iptables.get(`${t.pod} ${h.family} ${h.table} ${h.handle}`) ?? null),
    verdict: h.verdict,
    noChain: null,
    unNat: null,
    note: /\bTPROXY\b/.test(h.rule ?? '') ? tproxyRuleNote(input.routing?.[t.pod], h.family) : null,
  }))
}

/** Only called for an access line findConnections followed, whose addresses are all there. */
function sidecarStep(
  line: AccessLine,
  conn: Connection,
  next: Connection,
  listener: Endpoint | undefined,
  mode: TraceMode | undefined,
): Omit<Step, 'n'> {
  const peer = line.downstreamRemote!
  const originalDst = line.downstreamLocal!
  const accept: SidecarAccept = {
    peer,
    listener: listener ?? null,
    originalDst,
    destinationSource: line.pod !== conn.pod && mode === 'TPROXY' ? 'socket' : 'SO_ORIGINAL_DST',
    opened: { src: next.client, dst: next.server },
    cluster: line.cluster,
  }
  return {
    pod: line.pod,
    kind: 'sidecar',
    connection: conn.index,
    packet: { src: peer, dst: listener ?? originalDst, flags: [] },
    rewritten: null,
    hook: null,
    table: null,
    chain: null,
    rule: null,
    iptables: null,
    verdict: 'new connection',
    noChain: null,
    unNat: null,
    accept,
    walk: null,
    note:
      `accepted ${fmt(peer)}${listener ? ` on ${fmt(listener)}` : ''}; ` +
      `original destination ${fmt(originalDst)} (${accept.destinationSource === 'socket' ? destinationSource(mode) : 'SO_ORIGINAL_DST'}); ` +
      `opened ${fmt(next.client)} -> ${fmt(next.server)} (${line.cluster})`,
  }
}

export function assembleSteps(input: TraceInput): { connections: Connection[]; steps: Step[] } {
  const { connections, accepts } = findConnections(input)
  const tagged = input.traversals
    .map((t) => ({ t, conn: connectionOf(t, connections) }))
    .filter((x) => x.conn >= 0)
    .sort(
      (a, b) =>
        a.conn - b.conn ||
        Number(isReply(a.t.before)) - Number(isReply(b.t.before)) ||
        Number(a.t.hook === 'prerouting') - Number(b.t.hook === 'prerouting') ||
        a.t.seq - b.t.seq,
    )
  const ordered = tagged.map((x) => x.t)
  const steps: Omit<Step, 'n'>[] = []
  for (const c of connections) {
    tagged.forEach((x, i) => {
      if (x.conn !== c.index) return
      steps.push(...netfilterSteps(x.t, c.index, input, ordered, i))
    })
    const line = accepts.get(c.index)
    if (!line) continue
    const inbound = tagged.find(
      (x) => x.conn === c.index && x.t.pod === line.pod && !isReply(x.t.after) && input.sidecarPorts.includes(x.t.after.dport),
    )
    steps.push(sidecarStep(line, c, connections[c.index + 1]!, inbound ? ends(inbound.t.after).dst : undefined, input.mode))
  }
  return { connections, steps: steps.map((s, i) => ({ n: i + 1, ...s })) }
}

export function relevantConntrack(entries: ConntrackEntry[], connections: Connection[]): ConntrackEntry[] {
  return entries.filter((e) => connections.some((c) => sameEndpoint(originalSrc(e), c.client)))
}

/** The socket that opened a conntrack entry's connection. */
export function originalSrc(e: ConntrackEntry): Endpoint {
  return endpointOf(e.original.src, e.original.sport)
}
