// Everything a trace captured -> the report the renderers print. Pure, so the unit tests feed it the
// captured output of a real run and get exactly what the command would print.
import { parseEndpoint } from '../../net/address.js'
import { answer, type Answers } from './answers.js'
import type { AccessLine, ConntrackEntry } from './evidence.js'
import { ownTable, sidecarPorts } from './nft-table.js'
import { parseTrace, traversals } from './parse.js'
import { assembleSteps, relevantConntrack, type Connection, type Step } from './steps.js'
import type { TraceMode } from './tproxy.js'
import { walkStepOf } from './walk-step.js'

export interface Captured {
  lab: string
  /** client and server as address:port ([v6]:port), as curl and the lab report them */
  request: { from: string; to: string; url: string; client: string; server: string; status: string }
  /** each pod's `nft -a monitor` output */
  raw: Record<string, string>
  access: AccessLine[]
  /** key `pod family table handle` -> the rule in `iptables -S` form */
  iptables: Map<string, string>
  conntrack: ConntrackEntry[]
  /** the lab's inbound interception mode (REDIRECT when absent) */
  mode?: TraceMode
  /** TPROXY: each sidecar pod's fwmark rule and table 133 routes */
  routing?: Record<string, string[]>
}

export interface TraceReport {
  lab: string
  request: Captured['request']
  connections: Connection[]
  steps: Step[]
  conntrack: ConntrackEntry[]
  answers: Answers
  raw: Record<string, string>
  mode: TraceMode
  routing: Record<string, string[]>
}

export function buildReport(c: Captured): TraceReport {
  const seq = { n: 0 }
  const { from, to } = c.request
  const client = parseEndpoint(c.request.client)
  const server = parseEndpoint(c.request.server)
  const traced = [from, to].flatMap((p) => traversals(p, parseTrace(c.raw[p] ?? ''), ownTable, seq))
  const mode = c.mode ?? 'REDIRECT'
  const routing = c.routing ?? {}
  const { connections, steps } = assembleSteps({
    from,
    to,
    client,
    server,
    traversals: traced,
    access: c.access,
    iptables: c.iptables,
    sidecarPorts,
    mode,
    routing,
  })
  for (const s of steps) s.walk = walkStepOf(s, { connections, request: c.request })
  const conntrack = relevantConntrack(c.conntrack, connections)
  return {
    lab: c.lab,
    request: c.request,
    connections,
    steps,
    conntrack,
    answers: answer(steps, connections, conntrack, mode),
    raw: c.raw,
    mode,
    routing,
  }
}
