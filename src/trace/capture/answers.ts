// The walkthrough's two open questions, answered from this run's own evidence: does step 16 loop, and
// does the sidecar open a new TCP connection or rewrite packets?
import { endpointOf, formatEndpoint as fmt, sameEndpoint } from '../../net/address.js'
import type { ConntrackEntry } from './evidence.js'
import { originalSrc, type Connection, type Step } from './steps.js'
import { transparentSentence, type TraceMode } from './tproxy.js'

export interface RuleEvidence {
  step: number
  pod: string
  connection: number
  rule: string | null
  iptables: string | null
}

export interface LoopAnswer {
  question: string
  /** false when every sidecar connection was let through; null when the trace did not see them */
  loops: boolean | null
  answer: string
  /** the rule that let each sidecar connection's SYN out without a redirect */
  returns: RuleEvidence[]
  /** SYN-ACK steps; none of them names a nat chain */
  replySteps: number[]
  repliesSkipNat: boolean
}

export interface TupleEvidence {
  connection: number
  role: string
  pod: string
  client: string
  server: string
  /** where conntrack says NAT sent it, or null when conntrack holds it un-NATed */
  natTo: string | null
  conntrack: string | null
}

export interface NewConnectionAnswer {
  question: string
  newConnection: boolean | null
  answer: string
  tuples: TupleEvidence[]
}

export interface Answers {
  loop: LoopAnswer
  newConnection: NewConnectionAnswer
}

function loopAnswer(steps: Step[], connections: Connection[]): LoopAnswer {
  const sidecarConns = connections.filter((c) => c.role !== 'app')
  const synOut = (c: Connection) =>
    steps.filter(
      (s) =>
        s.kind === 'netfilter' && s.connection === c.index && s.pod === c.pod && s.hook === 'output' && !s.packet.flags.includes('ack'),
    )
  const returns = sidecarConns.flatMap((c) => {
    // The nat table's RETURN is the one that decides (in TPROXY mode the mangle table returns first, for the mark).
    const hit =
      synOut(c).find((s) => s.verdict === 'return' && /\bnat$/.test(s.table ?? '')) ?? synOut(c).find((s) => s.verdict === 'return')
    return hit ? [{ step: hit.n, pod: hit.pod, connection: c.index, rule: hit.rule, iptables: hit.iptables }] : []
  })
  const redirected = sidecarConns.some((c) => synOut(c).some((s) => /\bredirect\b/.test(s.rule ?? '')))
  const seen = sidecarConns.length > 0 && sidecarConns.every((c) => synOut(c).length > 0)
  const replies = steps.filter((s) => s.kind === 'netfilter' && s.packet.flags.includes('ack'))
  const repliesSkipNat = replies.length > 0 && replies.every((s) => !/\bnat$/.test(s.table ?? ''))
  const loops = redirected ? true : seen ? false : null
  const rules = returns.map((r) => `step ${r.step} in ${r.pod}: ${r.iptables ?? r.rule} (verdict return)`).join('; ')
  const answer =
    loops === false
      ? `No loop. The sidecar's own SYNs leave ISTIO_OUTPUT by a RETURN before the redirect rule: ${rules}. ` +
        (repliesSkipNat
          ? `Replies never enter a nat chain (steps ${replies.map((s) => s.n).join(', ')}): only a connection's first packet does; conntrack un-NATs the rest.`
          : 'Some reply went through a nat chain; see the steps.')
      : loops
        ? 'A sidecar connection was redirected again: that is the loop the walkthrough feared.'
        : "The trace did not see the sidecars' own connections, so it cannot tell."
  return {
    question: "Step 16: does the sidecar's own traffic go back into ISTIO_REDIRECT and loop?",
    loops,
    answer,
    returns,
    replySteps: replies.map((s) => s.n),
    repliesSkipNat,
  }
}

function tupleEvidence(c: Connection, conntrack: ConntrackEntry[]): TupleEvidence[] {
  const mine = conntrack.filter((e) => sameEndpoint(originalSrc(e), c.client))
  const rows = mine.length ? mine : [undefined]
  return rows.map((e) => ({
    connection: c.index,
    role: c.role,
    pod: e?.pod ?? c.pod,
    client: fmt(c.client),
    server: fmt(c.server),
    natTo: e?.nated ? fmt(endpointOf(e.reply.src, e.reply.sport)) : null,
    conntrack: e?.line ?? null,
  }))
}

function newConnectionAnswer(connections: Connection[], conntrack: ConntrackEntry[], mode: TraceMode | undefined): NewConnectionAnswer {
  const tuples = connections.flatMap((c) => tupleEvidence(c, conntrack))
  const [app, proxied] = connections
  const distinct = app && proxied ? !sameEndpoint(app.client, proxied.client) : null
  const appNat = tuples.find((t) => t.connection === 0 && t.pod === app?.pod)
  const ownNat = tuples.find((t) => t.connection === 1 && t.pod === proxied?.pod)
  const answer =
    distinct === null
      ? "No sidecar accepted the app's connection (no access log line names it), so there is nothing to compare."
      : distinct
        ? `A new connection. The app's socket is ${fmt(app!.client)} -> ${fmt(app!.server)}` +
          (appNat?.natTo ? `, which conntrack NATed to ${appNat.natTo}` : '') +
          `; the sidecar's socket is ${fmt(proxied!.client)} -> ${fmt(proxied!.server)}` +
          (ownNat?.conntrack ? (ownNat.natTo ? `, NATed to ${ownNat.natTo} in ${ownNat.pod}` : `, not NATed in ${ownNat.pod}`) : '') +
          '. Different source ports, two sockets: the sidecar terminates TCP and opens its own connection; no packet is rewritten on its way through.' +
          (mode === 'TPROXY' ? transparentSentence(connections) : '')
        : "The app's and the sidecar's connections have the same 4-tuple: packets were rewritten, not proxied."
  return {
    question: 'Does the sidecar forward by opening a new TCP connection, or by rewriting packet addresses?',
    newConnection: distinct,
    answer,
    tuples,
  }
}

export function answer(steps: Step[], connections: Connection[], conntrack: ConntrackEntry[], mode?: TraceMode): Answers {
  return { loop: loopAnswer(steps, connections), newConnection: newConnectionAnswer(connections, conntrack, mode) }
}
