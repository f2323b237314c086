// An ambient lab's trace -> its report: the app's connection, the ztunnel's connections that follow from it
// (found through the ztunnel's access log and the marked SYNs the kernel traced), each netfilter rule with
// the packet's mark and its connection's ct mark, and the ztunnel's hops. Pure, like capture/report.ts.
import { parseEndpoint, sameEndpoint, type Endpoint } from '../../net/address.js'
import type { ConntrackEntry } from '../capture/evidence.js'
import { ownTable, sidecarPorts } from '../capture/nft-table.js'
import { parseTrace, traversals, type Traversal } from '../capture/parse.js'
import { ends, isReply, netfilterSteps, relevantConntrack, type Connection, type Step, type TraceInput } from '../capture/steps.js'
import { ambientAnswers, type AmbientAnswers } from './answers.js'
import type { ZtunnelLine } from './evidence.js'
import { hopNote, hopTarget } from './hop-note.js'
import { INPOD_MARK, withMarks, type Marked } from './marks.js'

export interface AmbientCaptured {
  lab: string
  request: { from: string; to: string; url: string; client: string; server: string; status: string }
  raw: Record<string, string>
  ztunnel: { pid: number | null; ns: string; lines: ZtunnelLine[] }
  /** each pod's namespace, addresses and app pid */
  pods: Record<string, { ns: string; ip: string; ip6: string; app: number | null }>
  iptables: Map<string, string>
  conntrack: ConntrackEntry[]
  /** the called pod's reply routing (evidence.ts readReplyRouting) */
  routing: Record<string, string[]>
}

export type AmbientRole = 'app' | 'ztunnel outbound' | 'ztunnel inbound'

export interface AmbientConnection extends Connection {
  role: AmbientRole
  /** who owns the socket: its process and the namespace the process runs in (the socket is in `pod`'s) */
  owner: { process: string; pid: number | null; ns: string }
  /** an HBONE session from the pool: opened before this trace, so it has no SYN here */
  pooled?: boolean
}

export interface ZtunnelHop {
  direction: 'outbound' | 'inbound'
  peer: Endpoint
  listener: Endpoint | null
  originalDst: Endpoint
  opened: { src: Endpoint; dst: Endpoint } | null
}

export interface AmbientStep extends Omit<Step, 'kind' | 'accept' | 'walk'>, Marked {
  kind: 'netfilter' | 'ztunnel'
  ztunnel: ZtunnelHop | null
}

export interface AmbientReport {
  mode: 'ambient'
  lab: string
  request: AmbientCaptured['request']
  ztunnel: { pid: number | null; ns: string }
  connections: AmbientConnection[]
  steps: AmbientStep[]
  conntrack: ConntrackEntry[]
  routing: Record<string, string[]>
  answers: AmbientAnswers
  raw: Record<string, string>
}

/** The ztunnel's ports in a pod: 15001, 15006, and 15008 (HBONE between mesh pods arrives there, unredirected). */
export const ambientPorts = [...sidecarPorts, 15008]

const marked = (t: Traversal) => ((t.markBefore ?? 0) & 0xfff) === INPOD_MARK

/** The ztunnel's SYN for a hop: marked, leaving `pod`'s OUTPUT for dst, from a socket not seen yet. */
function ztunnelSyn(all: Traversal[], pod: string, dst: Endpoint, known: Endpoint[], from?: string): Endpoint | undefined {
  const t = all.find(
    (x) =>
      x.pod === pod &&
      x.hook === 'output' &&
      !isReply(x.before) &&
      marked(x) &&
      sameEndpoint(ends(x.before).dst, dst) &&
      (from === undefined || x.before.saddr === from) &&
      !known.some((k) => sameEndpoint(k, ends(x.before).src)),
  )
  return t ? ends(t.before).src : undefined
}

function findConnections(c: AmbientCaptured, all: Traversal[]): { connections: AmbientConnection[]; hops: Map<number, ZtunnelLine> } {
  const { from, to } = c.request
  const podOf = (address: string) => Object.keys(c.pods).find((p) => c.pods[p]!.ip === address || c.pods[p]!.ip6 === address)
  const zt = { process: 'ztunnel', pid: c.ztunnel.pid, ns: c.ztunnel.ns }
  const app = (pod: string, process: string) => ({
    process,
    pid: process === 'curl' ? null : (c.pods[pod]?.app ?? null),
    ns: c.pods[pod]?.ns ?? '',
  })
  const connections: AmbientConnection[] = [
    {
      index: 0,
      role: 'app',
      pod: from,
      client: parseEndpoint(c.request.client),
      server: parseEndpoint(c.request.server),
      owner: app(from, 'curl'),
    },
  ]
  const hops = new Map<number, ZtunnelLine>()
  const used = new Set<ZtunnelLine>()
  const follow = (start: number) => {
    for (let i = start; i < start + 4; i++) {
      const conn = connections[i]!
      const line = c.ztunnel.lines.find((l) => !used.has(l) && sameEndpoint(l.src, conn.client))
      if (!line) return
      used.add(line)
      hops.set(i, line)
      // outbound: served in the caller's pod; inbound: in the destination's, reaching the app from the caller's address
      const pod = line.direction === 'outbound' ? conn.pod : (podOf(line.dst.address) ?? to)
      const known = connections.map((k) => k.client)
      let src = ztunnelSyn(all, pod, line.dst, known, line.direction === 'inbound' ? conn.client.address : undefined)
      // HBONE: the tunnel rides a pooled connection to the peer's 15008 that an earlier request may have opened
      // (no SYN now); the peer's inbound line names its source
      let pooled = false
      if (!src && line.direction === 'outbound' && line.dst.port === 15008) {
        src = c.ztunnel.lines.find(
          (l) => !used.has(l) && l.direction === 'inbound' && l.src.address === conn.client.address && l.dst.address === line.dst.address,
        )?.src
        pooled = src !== undefined
      }
      if (!src) return
      const role = line.direction === 'outbound' ? 'ztunnel outbound' : 'ztunnel inbound'
      connections.push({ index: i + 1, role, pod, client: src, server: line.dst, owner: zt, ...(pooled ? { pooled } : {}) })
    }
  }
  follow(0)
  // the called pod's own call (reviews -> ratings): an outbound line from its address not on the chain above
  const server = connections[0]!.server
  const own = c.ztunnel.lines.find(
    (l) => !used.has(l) && l.direction === 'outbound' && l.src.address === server.address && podOf(l.src.address) === to,
  )
  if (own) {
    connections.push({ index: connections.length, role: 'app', pod: to, client: own.src, server: own.dst, owner: app(to, 'app') })
    follow(connections.length - 1)
  }
  return { connections, hops }
}

function connectionOf(t: Traversal, connections: Connection[]): number {
  const seen = [ends(t.before), ends(t.after)].flatMap((e) => [e.src, e.dst])
  return connections.findIndex((c) => seen.some((s) => sameEndpoint(s, c.client)))
}

function hopStep(
  line: ZtunnelLine,
  conn: AmbientConnection,
  next: AmbientConnection | undefined,
  listener: Endpoint | undefined,
  c: AmbientCaptured,
): Omit<AmbientStep, 'n'> {
  const pod = line.direction === 'outbound' ? conn.pod : (next?.pod ?? c.request.to)
  const who = `ztunnel (pid ${c.ztunnel.pid ?? '?'}, running in ${c.ztunnel.ns}, the node)`
  return {
    pod,
    kind: 'ztunnel',
    connection: conn.index,
    packet: { src: line.src, dst: listener ?? line.dst, flags: [] },
    rewritten: null,
    hook: null,
    table: null,
    chain: null,
    rule: null,
    iptables: null,
    verdict: 'new connection',
    noChain: null,
    unNat: null,
    mark: null,
    ctmark: null,
    ztunnel: {
      direction: line.direction,
      peer: line.src,
      listener: listener ?? null,
      originalDst: hopTarget(line),
      opened: next ? { src: next.client, dst: next.server } : null,
    },
    note: hopNote({ line, pod, who, listener, next }),
  }
}

export function buildAmbientReport(c: AmbientCaptured): AmbientReport {
  const seq = { n: 0 }
  const { from, to } = c.request
  const all = [from, to].flatMap((p) => traversals(p, parseTrace(c.raw[p] ?? ''), ownTable, seq))
  const { connections, hops } = findConnections(c, all)
  const tagged = all
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
  const input: TraceInput = {
    from,
    to,
    client: connections[0]!.client,
    server: connections[0]!.server,
    traversals: all,
    access: [],
    iptables: c.iptables,
    sidecarPorts,
  }
  const steps: Omit<AmbientStep, 'n'>[] = []
  const ctmarks = new Map<string, number>()
  for (const conn of connections) {
    tagged.forEach((x, i) => {
      if (x.conn !== conn.index) return
      steps.push(...withMarks(x.t, netfilterSteps(x.t, conn.index, input, ordered, i), ctmarks, conn.index, c.iptables))
    })
    const line = hops.get(conn.index)
    if (!line) continue
    const next = connections[conn.index + 1]
    const pod = line.direction === 'outbound' ? conn.pod : (next?.pod ?? to)
    const arrival = tagged.find(
      (x) => x.conn === conn.index && x.t.pod === pod && !isReply(x.t.after) && ambientPorts.includes(x.t.after.dport),
    )
    steps.push(hopStep(line, conn, next?.index === conn.index + 1 ? next : undefined, arrival ? ends(arrival.t.after).dst : undefined, c))
  }
  const numbered = steps.map((s, i) => ({ n: i + 1, ...s }))
  const conntrack = relevantConntrack(c.conntrack, connections)
  return {
    mode: 'ambient',
    lab: c.lab,
    request: c.request,
    ztunnel: { pid: c.ztunnel.pid, ns: c.ztunnel.ns },
    connections,
    steps: numbered,
    conntrack,
    routing: c.routing,
    answers: ambientAnswers(numbered, connections, c.routing),
    raw: c.raw,
  }
}

/** A conntrack line's mark field (decimal, as conntrack -L prints it), or null. */
export function conntrackMark(line: string): number | null {
  const m = /\bmark=(\d+)/.exec(line)
  return m ? Number(m[1]) : null
}
