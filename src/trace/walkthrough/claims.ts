// The walkthrough's 15 numbered steps, and which of them each step of a trace belongs to. The steps are
// brief English paraphrases of the seed "Istio 流量劫持原理" (2020-05-29), which numbers the red markers of
// Jimmy Song's interception figure (servicemesher.com/blog/sidecar-injection-iptables-and-traffic-routing/),
// productpage -> reviews. Its steps 9-15 tell reviews' reply as captured again; the figure most likely
// meant reviews' own outbound call (Bookinfo's reviews calls ratings), which the lab makes, so the trace
// holds both readings.
import type { TraceReport } from '../capture/report.js'
import type { Connection, Step } from '../capture/steps.js'

export const walkthroughSource =
  'seed walkthrough "Istio 流量劫持原理" (2020-05-29), numbering the markers of the figure in ' +
  'https://www.servicemesher.com/blog/sidecar-injection-iptables-and-traffic-routing/'

export interface WalkClaim {
  n: number
  claim: string
}

export const walkClaims: WalkClaim[] = [
  { n: 1, claim: 'productpage sends a TCP connection request to reviews.' },
  { n: 2, claim: "The request enters reviews' pod; netfilter's PREROUTING chain sends it to ISTIO_INBOUND." },
  { n: 3, claim: "ISTIO_INBOUND's rule -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT sends it on to ISTIO_IN_REDIRECT." },
  { n: 4, claim: "ISTIO_IN_REDIRECT redirects it to Envoy's inbound port 15006." },
  {
    n: 5,
    claim: 'After its inbound handling Envoy opens a TCP connection to reviews; being outbound for Envoy, netfilter sends it into OUTPUT.',
  },
  { n: 6, claim: 'OUTPUT sends it to ISTIO_OUTPUT.' },
  { n: 7, claim: 'Its destination is localhost, so no redirect rule matches: it RETURNs to the next chain, POSTROUTING.' },
  { n: 8, claim: "The sidecar's request reaches reviews on port 9080." },
  { n: 9, claim: 'reviews answers the sidecar; being outbound for reviews, netfilter again sends it into OUTPUT.' },
  { n: 10, claim: 'OUTPUT sends it to ISTIO_OUTPUT.' },
  { n: 11, claim: 'Traffic of the istio-proxy user to a non-localhost destination is sent to ISTIO_REDIRECT.' },
  { n: 12, claim: "ISTIO_REDIRECT redirects it to Envoy's outbound port 15001." },
  { n: 13, claim: 'After its outbound handling Envoy sends the response on, and netfilter again sends it into OUTPUT.' },
  { n: 14, claim: 'OUTPUT sends it to ISTIO_OUTPUT.' },
  { n: 15, claim: 'It RETURNs straight to the next chain, POSTROUTING.' },
]

/**
 * The part a connection plays in the walkthrough's story: the calling app's, its sidecar's, the called
 * pod's inbound sidecar's, and the called pod's own outbound call with its sidecar's connection.
 */
export type Part = 'call' | 'proxied' | 'inbound' | 'own call' | 'own proxied'

export function partOf(c: Connection, from: string, to: string): Part | null {
  if (c.role === 'app') return c.pod === from ? 'call' : c.pod === to ? 'own call' : null
  if (c.role === 'inbound sidecar') return c.pod === to ? 'inbound' : null
  if (c.role === 'outbound sidecar') return c.pod === from ? 'proxied' : c.pod === to ? 'own proxied' : null
  return null
}

export const isReplyStep = (s: Step) => s.packet.flags.includes('ack')
/** OUTPUT's own jump (not its policy): the packet "sent into OUTPUT, then to ISTIO_OUTPUT" */
const outputJump = (s: Step) => s.chain === 'OUTPUT' && !s.rule?.startsWith('policy ')

/** A connection the walkthrough's request reaches the called pod on: its sidecar's, or the app's when it has none. */
function inboundArrival(s: Step): number {
  if (s.chain === 'PREROUTING') return 2
  if (s.chain === 'ISTIO_INBOUND') return 3
  return 4
}

function netfilterStep(s: Step, part: Part, from: string, to: string): number {
  const reply = isReplyStep(s)
  switch (part) {
    case 'call':
    case 'proxied':
      if (s.pod === from && (!reply || part === 'call')) return 1
      if (reply) return 13 // the sidecar's (or app's) answer on the connection productpage opened
      return s.pod === to ? inboundArrival(s) : 1
    case 'inbound':
      if (reply) return 9
      if (s.hook === 'prerouting') return 8
      return outputJump(s) ? 6 : 7
    case 'own call':
      if (!reply && s.hook === 'output') return outputJump(s) ? 10 : s.chain === 'ISTIO_OUTPUT' ? 11 : 12
      return 12
    case 'own proxied':
      return !reply && s.hook === 'output' && outputJump(s) ? 14 : 15
  }
}

/** The walkthrough step a trace step belongs to, or null when its connection plays no part in the story. */
export function walkStepOf(s: Step, report: Pick<TraceReport, 'connections' | 'request'>): number | null {
  const { from, to } = report.request
  const c = report.connections[s.connection]
  const part = c ? partOf(c, from, to) : null
  if (!part) return null
  if (s.kind === 'sidecar') {
    if (s.pod === from) return 1
    return part === 'own call' ? 13 : 5
  }
  return netfilterStep(s, part, from, to)
}

/** trace step number -> walkthrough step (null: unassigned), as buildReport set each step's walk */
export function assignSteps(report: Pick<TraceReport, 'steps'>): Map<number, number | null> {
  return new Map(report.steps.map((s) => [s.n, s.walk]))
}

/** "1-10, 15" from a sorted list of numbers */
export function ranges(ns: number[]): string {
  const out: string[] = []
  for (let i = 0; i < ns.length; i++) {
    let j = i
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++
    out.push(i === j ? `${ns[i]}` : `${ns[i]}-${ns[j]}`)
    i = j
  }
  return out.join(', ')
}
