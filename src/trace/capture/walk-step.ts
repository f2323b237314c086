// Which of the walkthrough's 15 steps (walkthrough/claims.ts) a trace step belongs to. Set as each step's walk
// when the report is built (report.ts), so the text, the diagram and the verdicts read one assignment; here,
// not in walkthrough/, so that building the report needs nothing from the folders that read it.
import type { TraceReport } from './report.js'
import type { Connection, Step } from './steps.js'

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
