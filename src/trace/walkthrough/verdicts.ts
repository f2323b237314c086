// Each walkthrough step against this run's kernel evidence: confirmed, corrected (what happens instead,
// with the hops that show it) or not observable (and why). Steps 9-15 get two readings: as written (the
// reply captured again) and as the figure meant them (the called pod's own new outbound connection).
import { formatEndpoint as fmt, sameEndpoint } from '../../net/address.js'
import type { Answers } from '../capture/answers.js'
import type { ConntrackEntry } from '../capture/evidence.js'
import type { TraceReport } from '../capture/report.js'
import { originalSrc, type Connection, type Endpoints, type Step } from '../capture/steps.js'
import { isReplyStep, partOf, type Part } from '../capture/walk-step.js'
import { ranges } from '../render/ranges.js'
import { assignSteps, walkClaims, walkthroughSource } from './claims.js'

export type Verdict = 'confirmed' | 'corrected' | 'not observable'

/** A packet's addresses as the JSON shows them (docs/walkthrough.schema.json): address:port text. */
export interface ShownEndpoints {
  src: string
  dst: string
}

export interface HopEvidence {
  /** the trace's step number */
  step: number
  pod: string
  kind: 'netfilter' | 'sidecar'
  hook: 'output' | 'prerouting' | null
  chain: string | null
  /** the rule in `iptables -S` form when known, else nft's */
  rule: string | null
  verdict: string
  packet: ShownEndpoints & { flags: string[] }
  rewritten: ShownEndpoints | null
  /** the connection the packet belongs to: its opener's 4-tuple */
  connection: { role: string; pod: string; client: string; server: string }
  note: string | null
}

export interface Reading {
  verdict: Verdict
  finding: string
  evidence: HopEvidence[]
}

export interface WalkStepReport extends Reading {
  n: number
  claim: string
  /** the trace steps assigned to this walkthrough step */
  hops: number[]
  /** steps 9-15 read as the figure meant them: the called pod's own new outbound connection */
  meant: Reading | null
}

export interface RuleUse {
  pod: string
  rule: string
  steps: number[]
  /** who hit it: role, pod and 4-tuple of each connection */
  connections: string[]
}

export interface WalkthroughReport {
  source: string
  lab: string
  request: TraceReport['request']
  steps: WalkStepReport[]
  assignment: Array<{ step: number; walk: number | null }>
  unassigned: number[]
  rules: RuleUse[]
  questions: Answers
}

class Ctx {
  constructor(readonly report: TraceReport) {}
  conn(part: Part): Connection | undefined {
    const { from, to } = this.report.request
    return this.report.connections.find((c) => partOf(c, from, to) === part)
  }
  of(part: Part, pred: (s: Step) => boolean = () => true): Step[] {
    const c = this.conn(part)
    return c ? this.report.steps.filter((s) => s.connection === c.index && pred(s)) : []
  }
  ev(steps: Array<Step | undefined>): HopEvidence[] {
    return steps.flatMap((s) => (s ? [evidence(s, this.report.connections[s.connection]!)] : []))
  }
  ct(c: Connection | undefined, pod: string): ConntrackEntry | undefined {
    return c ? this.report.conntrack.find((e) => e.pod === pod && sameEndpoint(originalSrc(e), c.client)) : undefined
  }
}

const shown = (e: Endpoints): ShownEndpoints => ({ src: fmt(e.src), dst: fmt(e.dst) })
/** a connection's 4-tuple: "client -> server" */
const tuple = (c: Connection) => `${fmt(c.client)} -> ${fmt(c.server)}`

function evidence(s: Step, c: Connection): HopEvidence {
  return {
    step: s.n,
    pod: s.pod,
    kind: s.kind,
    hook: s.hook,
    chain: s.chain,
    rule: s.iptables ?? s.rule,
    verdict: s.verdict,
    packet: { ...shown(s.packet), flags: s.packet.flags },
    rewritten: s.rewritten && shown(s.rewritten),
    connection: { role: c.role, pod: c.pod, client: fmt(c.client), server: fmt(c.server) },
    note: s.note,
  }
}

const synOut = (s: Step) => s.kind === 'netfilter' && s.hook === 'output' && !isReplyStep(s)
const synIn = (s: Step) => s.kind === 'netfilter' && s.hook === 'prerouting' && !isReplyStep(s)
const ruleOf = (s: Step | undefined) => (s ? (s.iptables ?? s.rule ?? '') : '')
const possessive = (name: string) => (name.endsWith('s') ? `${name}'` : `${name}'s`)
const missing = (what: string): Reading => ({ verdict: 'not observable', finding: `the trace holds no ${what}`, evidence: [] })
const read = (verdict: Verdict, finding: string, evidence: HopEvidence[]): Reading => ({ verdict, finding, evidence })

/** Steps 1-8: the request's way in, as the walkthrough tells it. */
function inbound(x: Ctx, n: number): Reading {
  const { to } = x.report.request
  const arrive = x.of('proxied', (s) => synIn(s) && s.pod === to)
  const arrival = arrive.length ? arrive : x.of('call', (s) => synIn(s) && s.pod === to)
  const inb = x.conn('inbound')
  switch (n) {
    case 1: {
      const call = x.conn('call')
      const capture = x.of('call', synOut)
      const accept = x.report.steps.find((s) => s.kind === 'sidecar' && s.connection === call?.index)
      const out = x.of('proxied', synOut)
      if (!call || !arrival.length) return missing(`SYN of ${x.report.request.from}'s call arriving in ${to}`)
      const proxied = x.conn('proxied')
      const extra =
        accept && proxied
          ? ` In ${call.pod} itself that SYN is captured first (${capture
              .map((s) => s.chain)
              .filter(Boolean)
              .join(' -> ')}, steps ${ranges(capture.map((s) => s.n))}); ` +
            `what reaches ${to} is ${call.pod}'s sidecar's own new connection ${tuple(proxied)} (step ${accept.n}), let out by ${ruleOf(out.find((s) => s.verdict === 'return'))} (step ${out.find((s) => s.verdict === 'return')?.n}). The figure starts at the wire.`
          : ''
      return read('confirmed', `${possessive(call.pod)} app connects ${tuple(call)}.${extra}`, x.ev([...capture, accept, ...out]))
    }
    case 2: {
      const s = arrival.find((h) => h.chain === 'PREROUTING')
      if (!s) return missing(`nat PREROUTING hit for the SYN arriving in ${to}`)
      return read(
        s.verdict === 'jump ISTIO_INBOUND' ? 'confirmed' : 'corrected',
        `the SYN ${fmt(s.packet.src)} -> ${fmt(s.packet.dst)} hits ${ruleOf(s)} (${s.verdict})`,
        x.ev([s]),
      )
    }
    case 3: {
      const s = arrival.find((h) => h.chain === 'ISTIO_INBOUND')
      if (!s) return missing('ISTIO_INBOUND hit')
      const ok = s.verdict === 'jump ISTIO_IN_REDIRECT'
      return read(
        ok ? 'confirmed' : 'corrected',
        `${ruleOf(s)} (${s.verdict}); no port RETURN rule matched port ${s.packet.dst.port}`,
        x.ev([s]),
      )
    }
    case 4: {
      const s = arrival.find((h) => h.rewritten)
      if (!s) return missing('redirect of the arriving SYN')
      const ct = x.ct(x.conn('proxied') ?? x.conn('call'), to)
      const ok = s.rewritten!.dst.port === 15006
      return read(
        ok ? 'confirmed' : 'corrected',
        `${ruleOf(s)}: ${fmt(s.packet.dst)} became ${fmt(s.rewritten!.dst)}` + (ct ? `; conntrack: ${ct.line}` : ''),
        x.ev([s]),
      )
    }
    case 5: {
      const accept = x.report.steps.find((s) => s.kind === 'sidecar' && s.pod === to && x.report.connections[s.connection + 1] === inb)
      const first = x.of('inbound', synOut)[0]
      if (!inb || !accept) return missing(`connection opened by ${to}'s inbound sidecar`)
      return read(
        'confirmed',
        `a new connection ${tuple(inb)} (step ${accept.n}); its SYN enters nat OUTPUT (step ${first?.n ?? '?'}). Its source is ${inb.client.address}, not the caller's address`,
        x.ev([accept, first]),
      )
    }
    case 6: {
      const s = x.of('inbound', (h) => synOut(h) && h.chain === 'OUTPUT' && !h.rule?.startsWith('policy'))[0]
      if (!s) return missing("nat OUTPUT hit for the inbound sidecar's SYN")
      return read(s.verdict === 'jump ISTIO_OUTPUT' ? 'confirmed' : 'corrected', `${ruleOf(s)} (${s.verdict})`, x.ev([s]))
    }
    case 7: {
      const s = x.of('inbound', (h) => synOut(h) && h.chain === 'ISTIO_OUTPUT')[0]
      const policy = x.of('inbound', (h) => synOut(h) && h.chain === 'OUTPUT' && !!h.rule?.startsWith('policy'))[0]
      if (!s) return missing("ISTIO_OUTPUT hit for the inbound sidecar's SYN")
      const local = s.packet.dst.address === '127.0.0.1' || s.packet.dst.address === '::1'
      if (local && s.verdict === 'return') return read('confirmed', `${ruleOf(s)} returns it`, x.ev([s, policy]))
      return read(
        'corrected',
        `the destination is ${fmt(s.packet.dst)}, the pod's own address, not localhost. It is returned by ${ruleOf(s)} ` +
          `(the walkthrough's "(1)"): the inbound sidecar binds its upstream socket to ${s.packet.src.address}, and a packet to the pod's own address leaves via lo. ` +
          `Then OUTPUT's policy accepts${policy ? ` (step ${policy.n})` : ''}; nat POSTROUTING holds no rule, so nothing there decides`,
        x.ev([s, policy]),
      )
    }
    default: {
      const s = x.of('inbound', synIn)[0]
      if (!s) return missing("SYN of the inbound sidecar's connection arriving at the app")
      return read(
        sameEndpoint(s.packet.dst, inb?.server) ? 'confirmed' : 'corrected',
        `the SYN ${fmt(s.packet.src)} -> ${fmt(s.packet.dst)} comes back in through lo; ${s.chain ? `hits ${s.chain}` : 'no nat chain runs'}`,
        x.ev([s]),
      )
    }
  }
}

/** Steps 9-15 as written: the replies of the connections above, said to be captured again. */
function asWritten(x: Ctx, n: number): Reading {
  const { to } = x.report.request
  const first = n === 9 || n === 13
  // the connection the called pod's sidecar accepted: the caller's sidecar's, or the app's when it has none
  const arriving: Part = x.conn('proxied') ? 'proxied' : 'call'
  const replies = n <= 12 ? x.of('inbound', isReplyStep) : x.of(arriving, (s) => isReplyStep(s) && s.pod === to)
  const who = n <= 12 ? `${possessive(to)} answer to its sidecar` : "the sidecar's answer to the caller"
  if (!replies.length) return missing(`reply packet of ${who}`)
  const captured = replies.filter((s) => s.table !== null)
  if (captured.length) return read('confirmed', `${who} entered ${captured.map((s) => s.chain).join(', ')}`, x.ev(captured))
  const steps = `step${replies.length > 1 ? 's' : ''} ${ranges(replies.map((s) => s.n))}`
  if (!first) {
    const what = n === 11 || n === 12 ? 'no rule redirects it' : 'it never reaches ISTIO_OUTPUT'
    return read('corrected', `as in w${n <= 12 ? 9 : 13}: ${who} is a reply (${steps}) and enters no nat chain, so ${what}`, x.ev(replies))
  }
  const ct = x.ct(x.conn(n === 9 ? 'inbound' : arriving), to)
  const unNat = replies.find((s) => s.unNat)?.unNat
  return read(
    'corrected',
    `${who} goes out on the same connection, as replies (${steps}): only a connection's first packet enters the nat chains, ` +
      'so nothing sends these into nat OUTPUT; ' +
      (unNat ? `conntrack itself turns ${fmt(unNat.from)} back into ${fmt(unNat.to)}` : 'conntrack knows the connection') +
      (ct ? ` (conntrack: ${ct.nated ? 'NAT' : 'no NAT'} ${ct.line})` : ''),
    x.ev(replies),
  )
}

/** Steps 9-15 as the figure meant them: the called pod's own call and its sidecar's connection. */
function asMeant(x: Ctx, n: number): Reading {
  const call = x.conn('own call')
  const own = x.conn('own proxied')
  if (!call) return missing(`outbound call from ${x.report.request.to}'s app in this run`)
  const out = x.of('own call', synOut)
  const pOut = x.of('own proxied', synOut)
  const jump = (steps: Step[]) => steps.find((s) => s.chain === 'OUTPUT' && !s.rule?.startsWith('policy'))
  const ist = (steps: Step[]) => steps.find((s) => s.chain === 'ISTIO_OUTPUT')
  switch (n) {
    case 9:
      return read(
        'confirmed',
        `${possessive(call.pod)} app opens a new connection ${tuple(call)}; its SYN enters nat OUTPUT (step ${out[0]?.n})`,
        x.ev([out[0]]),
      )
    case 10:
    case 14: {
      const s = jump(n === 10 ? out : pOut)
      if (!s) return missing(`nat OUTPUT hit for ${n === 10 ? "the app's" : "the sidecar's"} call`)
      return read(s.verdict === 'jump ISTIO_OUTPUT' ? 'confirmed' : 'corrected', `${ruleOf(s)} (${s.verdict})`, x.ev([s]))
    }
    case 11: {
      const s = ist(out)
      const ret = ist(pOut)
      if (!s) return missing("ISTIO_OUTPUT hit for the app's call")
      const byUid = /uid-owner 1337|skuid 1337/.test(ruleOf(s)) && !/!/.test(ruleOf(s))
      if (byUid) return read('confirmed', `${ruleOf(s)} (${s.verdict})`, x.ev([s]))
      return read(
        'corrected',
        `the app's call (uid 1000, not istio-proxy) reaches ISTIO_REDIRECT by ${ruleOf(s)} (step ${s.n}), the last rule; ` +
          `istio-proxy's own traffic (uid 1337) is returned instead${ret ? `: ${ruleOf(ret)} (step ${ret.n})` : ''}`,
        x.ev([s, ret]),
      )
    }
    case 12: {
      const s = out.find((h) => h.rewritten)
      if (!s) return missing("redirect of the app's call")
      const ct = x.ct(call, call.pod)
      return read(
        s.rewritten!.dst.port === 15001 ? 'confirmed' : 'corrected',
        `${ruleOf(s)}: ${fmt(s.packet.dst)} became ${fmt(s.rewritten!.dst)}` + (ct ? `; conntrack: ${ct.line}` : ''),
        x.ev([s]),
      )
    }
    case 13: {
      const accept = x.report.steps.find((s) => s.kind === 'sidecar' && s.connection === call.index)
      if (!accept || !own) return missing("connection opened by the sidecar for the app's call")
      return read(
        'confirmed',
        `the sidecar accepts it and opens its own connection ${tuple(own)} (step ${accept.n}); its SYN enters nat OUTPUT (step ${pOut[0]?.n})`,
        x.ev([accept, pOut[0]]),
      )
    }
    default: {
      const s = ist(pOut)
      if (!s) return missing("ISTIO_OUTPUT hit for the sidecar's own call")
      const policy = pOut.find((h) => h.rule?.startsWith('policy'))
      return read(
        s.verdict === 'return' ? 'confirmed' : 'corrected',
        `${ruleOf(s)} (${s.verdict}), then OUTPUT's policy accepts${policy ? ` (step ${policy.n})` : ''}: no loop`,
        x.ev([s, policy]),
      )
    }
  }
}

function ruleUses(report: TraceReport): RuleUse[] {
  const uses = new Map<string, RuleUse>()
  for (const s of report.steps) {
    if (!s.iptables || !/^-A ISTIO_/.test(s.iptables)) continue
    const key = `${s.pod} ${s.iptables}`
    const use = uses.get(key) ?? { pod: s.pod, rule: s.iptables, steps: [], connections: [] }
    const c = report.connections[s.connection]!
    use.steps.push(s.n)
    const who = `${c.role} in ${c.pod} ${tuple(c)}`
    if (!use.connections.includes(who)) use.connections.push(who)
    uses.set(key, use)
  }
  return [...uses.values()]
}

export function walkthrough(report: TraceReport): WalkthroughReport {
  const x = new Ctx(report)
  const assigned = assignSteps(report)
  const steps = walkClaims.map(({ n, claim }): WalkStepReport => {
    const main = n <= 8 ? inbound(x, n) : asWritten(x, n)
    const hops = report.steps.filter((s) => assigned.get(s.n) === n).map((s) => s.n)
    return { n, claim, ...main, hops, meant: n <= 8 ? null : asMeant(x, n) }
  })
  const assignment = report.steps.map((s) => ({ step: s.n, walk: assigned.get(s.n) ?? null }))
  return {
    source: walkthroughSource,
    lab: report.lab,
    request: report.request,
    steps,
    assignment,
    unassigned: assignment.filter((a) => a.walk === null).map((a) => a.step),
    rules: ruleUses(report),
    questions: report.answers,
  }
}
