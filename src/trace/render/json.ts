// --json: a stable shape for scripts and tests. Field order is fixed here, not by how the report grew.
// Addresses are Endpoints in the report and address:port text ([v6]:port) here.
import { formatEndpoint as fmt } from '../../net/address.js'
import type { TraceReport } from '../capture/report.js'
import type { Endpoints } from '../capture/steps.js'

const shown = (e: Endpoints) => ({ src: fmt(e.src), dst: fmt(e.dst) })

export function toJson(report: TraceReport): object {
  return {
    lab: report.lab,
    request: report.request,
    connections: report.connections.map((c) => ({
      index: c.index,
      role: c.role,
      pod: c.pod,
      client: fmt(c.client),
      server: fmt(c.server),
    })),
    steps: report.steps.map((s) => ({
      n: s.n,
      pod: s.pod,
      kind: s.kind,
      connection: s.connection,
      packet: { ...shown(s.packet), flags: s.packet.flags },
      rewritten: s.rewritten && shown(s.rewritten),
      hook: s.hook,
      table: s.table,
      chain: s.chain,
      rule: s.rule,
      iptables: s.iptables,
      verdict: s.verdict,
      note: s.note,
    })),
    conntrack: report.conntrack,
    mode: report.mode,
    routing: report.routing,
    answers: report.answers,
  }
}

export function renderJson(report: TraceReport): string {
  return JSON.stringify(toJson(report), null, 2) + '\n'
}
