// The walkthrough's 15 numbered steps (which of them each trace step belongs to: capture/walk-step.ts). The
// steps are brief English paraphrases of the seed "Istio 流量劫持原理" (2020-05-29), which numbers the red markers of
// Jimmy Song's interception figure (servicemesher.com/blog/sidecar-injection-iptables-and-traffic-routing/),
// productpage -> reviews. Its steps 9-15 tell reviews' reply as captured again; the figure most likely
// meant reviews' own outbound call (Bookinfo's reviews calls ratings), which the lab makes, so the trace
// holds both readings.
import type { TraceReport } from '../capture/report.js'

export const walkthroughSource =
  'the walkthrough "Istio 流量劫持原理" (2020-05-29), numbering the markers of the figure in ' +
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

/** trace step number -> walkthrough step (null: unassigned), as buildReport set each step's walk */
export function assignSteps(report: Pick<TraceReport, 'steps'>): Map<number, number | null> {
  return new Map(report.steps.map((s) => [s.n, s.walk]))
}
