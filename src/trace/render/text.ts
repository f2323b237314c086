// The report as numbered lines, in the walkthrough's manner: one line per chain rule a packet hit, tagged with
// the walkthrough step it belongs to ([w4]), the sidecars' accepts in between, then the two open questions.
import { formatEndpoint as fmt } from '../../net/address.js'
import type { TraceReport } from '../capture/report.js'
import type { Endpoints, Step } from '../capture/steps.js'
import { defaultWidth, wrapText } from '../../text/wrap.js'

const tuple = (e: Endpoints) => `${fmt(e.src)} -> ${fmt(e.dst)}`

function flagText(flags: string[]): string {
  return flags.length ? flags.map((f) => f.toUpperCase()).join('-') : ''
}

export function stepHeadline(s: Step): string {
  if (s.kind === 'sidecar') return `${s.pod} sidecar: ${s.note ?? ''}`
  const where = s.chain ? `${s.table} ${s.chain}` : 'no nat chain'
  const rule = s.rule?.startsWith('policy ') ? s.rule : s.rule ? `rule: ${s.rule}` : ''
  return `${s.pod} ${s.hook} ${where}${rule ? `  ${rule}` : ''}  -> ${s.verdict}`
}

/** walk: the walkthrough step this step belongs to, as [wN] after the number */
function stepLines(s: Step, width: number): string[] {
  const num = `${String(s.n).padStart(width)}. ${`[w${s.walk ?? '?'}]`.padEnd(5)} `
  const pad = ' '.repeat(num.length)
  const lines = [num + stepHeadline(s)]
  if (s.iptables) lines.push(`${pad}iptables: ${s.iptables}`)
  if (s.rewritten) lines.push(`${pad}rewritten: ${tuple(s.packet)} became ${tuple(s.rewritten)}`)
  if (s.kind === 'netfilter' && s.note) lines.push(`${pad}(${s.note})`)
  return lines
}

function packetHeading(s: Step): string {
  return `   [${s.pod}, ${s.hook}] ${flagText(s.packet.flags)} ${tuple(s.packet)}`
}

/** width: the reader's terminal (src/text/wrap.ts); --json keeps every line whole */
export function renderText(report: TraceReport, columns = defaultWidth): string {
  const { request: r } = report
  const out = [`trace: ${r.from} -> ${r.to} ${r.url} (lab ${report.lab}): ${r.status}`, '']
  const width = String(report.steps.length).length
  let lastConn = -1
  let lastPacket = ''
  for (const s of report.steps) {
    if (s.connection !== lastConn && s.kind === 'netfilter') {
      const c = report.connections[s.connection]!
      out.push(`${c.role}'s connection (opened in ${c.pod}): ${tuple({ src: c.client, dst: c.server })}`)
      lastConn = s.connection
    }
    const packet = s.kind === 'netfilter' ? `${s.pod} ${s.hook} ${tuple(s.packet)} ${s.packet.flags.join(',')}` : ''
    if (packet && packet !== lastPacket) out.push(packetHeading(s))
    lastPacket = packet
    out.push(...stepLines(s, width))
  }
  out.push('', 'conntrack in the pods (the connections above):')
  for (const e of report.conntrack) out.push(`  ${e.pod}: ${e.nated ? 'NAT   ' : 'no NAT'} ${e.line}`)
  if (report.conntrack.length === 0) out.push('  (none found)')
  for (const [pod, lines] of Object.entries(report.routing)) out.push('', `TPROXY policy routing in ${pod}:`, ...lines.map((l) => `  ${l}`))
  for (const a of [report.answers.loop, report.answers.newConnection]) out.push('', `Q: ${a.question}`, `A: ${a.answer}`)
  out.push('', '[wN]: the walkthrough step (1-15) each step belongs to; --walkthrough checks each of them against this run.')
  return wrapText(out.join('\n') + '\n', columns)
}
