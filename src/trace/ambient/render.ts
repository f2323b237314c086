// The ambient report as numbered lines, like render/text.ts: each connection with the process that owns its
// socket and the namespace that process runs in, every rule its SYN and SYN-ACK hit with the packet's mark and
// its connection's ct mark, the ztunnel's hops between them, then the three answers and the reply routing.
import { formatEndpoint as fmt } from '../../net/address.js'
import type { Endpoints } from '../capture/steps.js'
import { defaultWidth, wrapText } from '../../text/wrap.js'
import { hex } from './marks.js'
import { conntrackMark, type AmbientConnection, type AmbientReport, type AmbientStep } from './report.js'

const tuple = (e: Endpoints) => `${fmt(e.src)} -> ${fmt(e.dst)}`
const flagText = (flags: string[]) => flags.map((f) => f.toUpperCase()).join('-')

function owner(c: AmbientConnection, report: AmbientReport): string {
  if (c.owner.process === 'ztunnel')
    return `socket in the namespace of ${c.pod}, owned by the ztunnel (pid ${c.owner.pid ?? '?'}) running in ${c.owner.ns}, the node`
  const who = c.owner.process === 'curl' ? "curl as the app's user" : `the app (pid ${c.owner.pid ?? '?'})`
  return `socket of ${who} in ${c.pod} (${c.owner.ns || report.lab})`
}

function headline(s: AmbientStep): string {
  if (s.kind === 'ztunnel') return `${s.pod} ztunnel: ${s.note ?? ''}`
  const where = s.chain ? `${s.table} ${s.chain}` : 'no nat chain'
  const rule = s.rule?.startsWith('policy ') ? s.rule : s.rule ? `rule: ${s.rule}` : ''
  const marks = `[mark ${hex(s.mark ?? 0)}, ct mark ${hex(s.ctmark ?? 0)}]`
  return `${s.pod} ${s.hook} ${where}${rule ? `  ${rule}` : ''}  -> ${s.verdict}  ${marks}`
}

function stepLines(s: AmbientStep, width: number): string[] {
  const num = `${String(s.n).padStart(width)}. `
  const pad = ' '.repeat(num.length)
  const lines = [num + headline(s)]
  if (s.iptables && s.verdict !== 'not taken') lines.push(`${pad}iptables: ${s.iptables}`)
  if (s.rewritten) lines.push(`${pad}rewritten: ${tuple(s.packet)} became ${tuple(s.rewritten)}`)
  if (s.kind === 'netfilter' && s.note) lines.push(`${pad}(${s.note})`)
  return lines
}

export function renderAmbientText(report: AmbientReport, columns = defaultWidth): string {
  const { request: r } = report
  const out = [
    `trace: ${r.from} -> ${r.to} ${r.url} (lab ${report.lab}, ambient mode): ${r.status}`,
    `the ztunnel: pid ${report.ztunnel.pid ?? '?'} in ${report.ztunnel.ns} (the node); its sockets in the pods carry mark 0x539`,
    '',
  ]
  const width = String(report.steps.length).length
  let lastConn = -1
  let lastPacket = ''
  for (const s of report.steps) {
    if (s.connection !== lastConn && s.kind === 'netfilter') {
      const c = report.connections[s.connection]!
      out.push(`${c.role}'s connection (${owner(c, report)}): ${tuple({ src: c.client, dst: c.server })}`)
      lastConn = s.connection
    }
    const packet = s.kind === 'netfilter' ? `${s.pod} ${s.hook} ${tuple(s.packet)} ${s.packet.flags.join(',')}` : ''
    if (packet && packet !== lastPacket) out.push(`   [${s.pod}, ${s.hook}] ${flagText(s.packet.flags)} ${tuple(s.packet)}`)
    lastPacket = packet
    out.push(...stepLines(s, width))
  }
  out.push('', 'conntrack in the pods (the connections above; mark= is the ct mark):')
  for (const e of report.conntrack) {
    const mark = conntrackMark(e.line)
    out.push(`  ${e.pod}: ${e.nated ? 'NAT   ' : 'no NAT'} ct mark ${hex(mark ?? 0)}  ${e.line}`)
  }
  if (report.conntrack.length === 0) out.push('  (none found)')
  for (const [pod, lines] of Object.entries(report.routing))
    out.push('', `reply routing in ${pod} (istio-cni's policy rule and table 100):`, ...lines.map((l) => `  ${l}`))
  for (const a of [report.answers.wire, report.answers.loop, report.answers.reply]) out.push('', `Q: ${a.question}`, `A: ${a.answer}`)
  return wrapText(out.join('\n') + '\n', columns)
}
