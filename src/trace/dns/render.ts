// `trace --dns` as text, JSON and an SVG sequence diagram. Renderers only render: every fact is a field
// of the report (src/trace/dns/report.ts).
import type { DnsTraceReport } from './report.js'
import type { DnsRun } from './run.js'
import { defaultWidth, wrapText } from '../../text/wrap.js'

function runText(title: string, run: DnsRun): string[] {
  const out = [
    `${title}: dig ${run.name} from ${run.client} (uid 1000): ${run.dig.status} ${run.dig.answers.map((a) => `${a.name} ${a.ttl} ${a.type} ${a.data}`).join(', ')} -- answered by: ${run.answeredBy}`,
  ]
  for (const hop of run.hops) {
    const where = [hop.packet.oif && `oif ${hop.packet.oif}`, hop.packet.iif && `iif ${hop.packet.iif}`].filter(Boolean).join(' ')
    out.push(`   [${hop.hook}] ${hop.role}: UDP ${hop.packet.src} -> ${hop.packet.dst}${where ? ` (${where})` : ''}`)
    for (const h of hop.hits) {
      out.push(
        ` ${String(h.step).padStart(2)}. ip ${h.table} ${h.chain}  ${h.rule === null ? 'policy' : `rule: ${h.rule}`}  -> ${h.verdict}`,
      )
      if (h.iptables) out.push(`     iptables: ${h.iptables}`)
    }
    if (hop.rewritten)
      out.push(`     rewritten: ${hop.packet.src} -> ${hop.packet.dst} became ${hop.rewritten.src} -> ${hop.rewritten.dst}`)
    if (hop.note) out.push(`     (${hop.note})`)
  }
  const counters = Object.entries(run.sidecar)
    .map(([k, v]) => `dns.${k} +${v}`)
    .join(', ')
  out.push(`   sidecar's counters: ${counters || 'unchanged (it never saw the query)'}`)
  out.push('   conntrack -L -p udp (productpage, these flows):')
  for (const e of run.conntrack) out.push(`     ${e.line}`)
  if (run.conntrack.length === 0) out.push('     (none)')
  out.push("   the lab DNS server's log (dnsmasq, client/port):")
  for (const q of run.serverQueries) out.push(`     ${q.client}/${q.port} query[${q.type}] ${q.name}`)
  if (run.serverQueries.length === 0) out.push('     (no query)')
  return out
}

/** width: the reader's terminal (src/text/wrap.ts); --json keeps every line whole */
export function renderDnsText(r: DnsTraceReport, width = defaultWidth): string {
  const out = [`trace --dns: productpage looks up ${r.lookup.name} (lab ${r.lab}, rules: ${r.rules})`, '']
  out.push(...runText('the lookup', r.lookup), '')
  if (r.probe) out.push(...runText(`zone probe: the app reuses the sidecar's upstream port ${r.probe.port}`, r.probe.run), '')
  const nz = r.withoutZones
  if (nz && !nz.error) {
    out.push(
      `without the zones: throwaway lab ${nz.lab}, productpage's raw table flushed (removed: ${nz.removed.join(' | ') || 'nothing'})`,
      '',
    )
    out.push(...runText('the lookup (no zones)', nz.lookup), '')
    if (nz.probe)
      out.push(...runText(`zone probe (no zones): the app reuses the sidecar's upstream port ${nz.probe.port}`, nz.probe.run), '')
  }
  out.push(`Q: ${r.answer.question}`, `A: ${r.answer.answer}`, '')
  return wrapText(out.join('\n'), width)
}

export function renderDnsJson(r: DnsTraceReport): string {
  // the raw monitor output is for --raw, not the report
  return JSON.stringify(r, (k, v) => (k === 'raw' ? undefined : v), 2) + '\n'
}

const lanes = ['app (uid 1000)', 'netfilter', 'sidecar :15053 (uid 1337)', 'DNS server 198.18.0.53']

function arrow(role: string, redirected: boolean): [number, number] {
  if (role === "app's query") return redirected ? [0, 2] : [0, 3]
  if (role === "app's query arriving at the sidecar") return [1, 2]
  if (role === "sidecar's upstream query") return [2, 3]
  if (role === "the DNS server's reply to the sidecar") return [3, 2]
  if (role === "sidecar's answer to the app") return [2, 0]
  if (role.startsWith('the answer arriving at the app')) return role.includes('lo') ? [1, 0] : [3, 0]
  return [1, 1]
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function runSvg(run: DnsRun, title: string, y0: number): { body: string[]; height: number } {
  const x = (i: number) => 120 + i * 260
  const body = [`<text x="10" y="${y0 + 20}" font-weight="bold">${esc(title)}</text>`]
  let y = y0 + 50
  for (const hop of run.hops) {
    const [from, to] = arrow(hop.role, !!hop.rewritten && hop.rewritten.dst.endsWith(':15053'))
    const keys = hop.hits
      .filter((h) => /CT|REDIRECT|RETURN|redirect|return|zone/.test(`${h.iptables ?? ''} ${h.rule ?? ''}`))
      .map((h) => h.iptables ?? `${h.chain}: ${h.rule}`)
    body.push(`<line x1="${x(from)}" y1="${y}" x2="${x(to)}" y2="${y}" stroke="#333" marker-end="url(#a)"/>`)
    body.push(
      `<text x="${Math.min(x(from), x(to)) + 6}" y="${y - 6}" font-size="11">${esc(`${hop.n}. ${hop.role}: ${hop.packet.src} -> ${hop.packet.dst}`)}</text>`,
    )
    keys.forEach((k, i) =>
      body.push(`<text x="${Math.min(x(from), x(to)) + 6}" y="${y + 14 + i * 13}" font-size="10" fill="#555">${esc(k)}</text>`),
    )
    y += 40 + keys.length * 13
  }
  body.push(
    `<text x="10" y="${y}" font-size="11">${esc(`answer: ${run.dig.answers.map((a) => `${a.data} TTL ${a.ttl}`).join(', ') || run.dig.status}; answered by: ${run.answeredBy}`)}</text>`,
  )
  return { body, height: y - y0 + 20 }
}

export function renderDnsSvg(r: DnsTraceReport): string {
  const parts: { run: DnsRun; title: string }[] = [{ run: r.lookup, title: `lookup of ${r.lookup.name} (lab ${r.lab})` }]
  if (r.probe) parts.push({ run: r.probe.run, title: `with zones: app query from the sidecar's upstream port ${r.probe.port}` })
  if (r.withoutZones?.probe) parts.push({ run: r.withoutZones.probe.run, title: `without zones (${r.withoutZones.lab}): the same probe` })
  const width = 120 + 3 * 260 + 420
  let y = 40
  const body: string[] = []
  for (const p of parts) {
    const s = runSvg(p.run, p.title, y)
    body.push(...s.body)
    y += s.height + 20
  }
  const head = lanes.map(
    (l, i) =>
      `<text x="${120 + i * 260}" y="24" text-anchor="middle" font-weight="bold">${esc(l)}</text><line x1="${120 + i * 260}" y1="30" x2="${120 + i * 260}" y2="${y}" stroke="#bbb" stroke-dasharray="4 4"/>`,
  )
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 20}" font-family="monospace" font-size="12">`,
    '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>',
    `<rect width="100%" height="100%" fill="white"/>`,
    ...head,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}
