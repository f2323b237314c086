// --walkthrough as text and JSON: the walkthrough's 15 steps in its order, each with this run's evidence
// and a verdict, then which trace step belongs to which walkthrough step, the rules and who hit them, and
// the two open questions. The JSON's shape is docs/walkthrough.schema.json.
import type { HopEvidence, Reading, WalkthroughReport } from './verdicts.js'
import { ranges } from '../render/ranges.js'
import { defaultWidth, wrapText } from '../../text/wrap.js'

function hopLine(h: HopEvidence): string {
  if (h.kind === 'sidecar') return `step ${h.step}  ${h.pod} sidecar: ${h.note ?? ''}`
  const flags = h.packet.flags.map((f) => f.toUpperCase()).join('-')
  const where = h.chain ? `nat ${h.chain}` : 'no nat chain'
  const rule = h.rule ? `  ${h.rule}` : ''
  const now = h.rewritten ? ` (now -> ${h.rewritten.dst})` : ''
  return (
    `step ${h.step}  ${h.pod} ${h.hook} ${where}${rule}  => ${h.verdict}   ${flags} ${h.packet.src} -> ${h.packet.dst}${now}   ` +
    `[${h.connection.role} in ${h.connection.pod}: ${h.connection.client} -> ${h.connection.server}]`
  )
}

function readingLines(label: string, r: Reading): string[] {
  return [`     ${label}${r.verdict.toUpperCase()}: ${r.finding}`, ...r.evidence.map((h) => `         ${hopLine(h)}`)]
}

/** width: the reader's terminal (src/text/wrap.ts); --json keeps every line whole */
export function renderWalkthroughText(w: WalkthroughReport, width = defaultWidth): string {
  const r = w.request
  const out = [`walkthrough, checked: ${r.from} -> ${r.to} ${r.url} (lab ${w.lab}): ${r.status}`, `source: ${w.source}`, '']
  for (const s of w.steps) {
    out.push(
      ` w${String(s.n).padEnd(2)} "${s.claim}"   (trace step${s.hops.length > 1 ? 's' : ''} ${s.hops.length ? ranges(s.hops) : 'none'})`,
    )
    out.push(...readingLines(s.meant ? 'as written: ' : '', s))
    if (s.meant) out.push(...readingLines(`as the figure meant it (${r.to} app's own outbound call): `, s.meant))
    out.push('')
  }
  out.push('trace steps by walkthrough step:')
  for (const s of w.steps) out.push(`  w${s.n}: ${s.hops.length ? ranges(s.hops) : '-'}`)
  out.push(`  unassigned: ${w.unassigned.length ? w.unassigned.join(', ') : 'none'}`, '')
  out.push('the ISTIO_* rules this run hit, and which connection hit each:')
  for (const u of w.rules)
    out.push(
      `  ${u.pod}: ${u.rule}  (step${u.steps.length > 1 ? 's' : ''} ${ranges(u.steps)})`,
      ...u.connections.map((c) => `      by ${c}`),
    )
  for (const a of [w.questions.loop, w.questions.newConnection]) out.push('', `Q: ${a.question}`, `A: ${a.answer}`)
  return wrapText(out.join('\n') + '\n', width)
}

export function walkthroughJson(w: WalkthroughReport): object {
  return {
    source: w.source,
    lab: w.lab,
    request: w.request,
    steps: w.steps.map((s) => ({
      n: s.n,
      claim: s.claim,
      verdict: s.verdict,
      finding: s.finding,
      evidence: s.evidence,
      hops: s.hops,
      meant: s.meant,
    })),
    assignment: w.assignment,
    unassigned: w.unassigned,
    rules: w.rules,
    questions: { loop: w.questions.loop, newConnection: w.questions.newConnection },
  }
}

export function renderWalkthroughJson(w: WalkthroughReport): string {
  return JSON.stringify(walkthroughJson(w), null, 2) + '\n'
}
