// --json: a stable shape for scripts and tests. Field order is fixed here, not by how the report grew.
import type { TraceReport } from './report.js'

export function toJson(report: TraceReport): object {
  return {
    lab: report.lab,
    request: report.request,
    connections: report.connections,
    steps: report.steps.map((s) => ({
      n: s.n, pod: s.pod, kind: s.kind, connection: s.connection,
      packet: { src: s.packet.src, dst: s.packet.dst, flags: s.packet.flags },
      rewritten: s.rewritten, hook: s.hook, table: s.table, chain: s.chain, rule: s.rule, iptables: s.iptables,
      verdict: s.verdict, note: s.note,
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
