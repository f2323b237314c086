// --svg: the steps as a sequence diagram. Six lanes (each pod's app, netfilter and sidecar), one arrow
// per packet per hook with its step numbers in a badge, and the rule that decided it in a column of its
// own on the right, so the arrows stay short and the text stays readable.
import { formatEndpoint as fmt } from '../../net/address.js'
import { hops, type Hop } from './hops.js'
import type { TraceReport } from '../capture/report.js'

const laneGap = 120
const left = 90
const top = 130
const rowH = 50
const notesX = left + laneGap * 5 + 70
const width = notesX + 930

const colors = {
  redirect: '#d9480f',
  return: '#2b8a3e',
  conntrack: '#868e96',
  plain: '#1c7ed6',
  sidecar: '#5f3dc4',
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`
}

function lanes(report: TraceReport): Array<{ key: string; title: string; pod: string }> {
  const { from, to } = report.request
  return [
    { key: `${from}:app`, title: 'app', pod: from },
    { key: `${from}:netfilter`, title: 'netfilter', pod: from },
    { key: `${from}:sidecar`, title: 'sidecar', pod: from },
    { key: `${to}:netfilter`, title: 'netfilter', pod: to },
    { key: `${to}:sidecar`, title: 'sidecar', pod: to },
    { key: `${to}:app`, title: 'app', pod: to },
  ]
}

function header(report: TraceReport, laneX: Map<string, number>): string[] {
  const out: string[] = []
  const r = report.request
  out.push(text(20, 34, `sidecar-lab trace: ${r.from} → ${r.to}  ${r.url}  (${r.status})`, 'font-size="20" font-weight="bold"'))
  out.push(
    text(
      20,
      58,
      "Connection setup, packet by packet, from the kernel's nft trace. Numbers are the steps of the text output; [wN] the walkthrough's step.",
      'font-size="13" fill="#495057"',
    ),
  )
  for (const [i, pod] of [r.from, r.to].entries()) {
    const x0 = left + laneGap * 3 * i - 55
    out.push(
      `<rect x="${x0}" y="72" width="${laneGap * 3 - 10}" height="${top - 80}" rx="8" fill="${i ? '#fff4e6' : '#e7f5ff'}" stroke="#adb5bd"/>`,
    )
    out.push(text(x0 + (laneGap * 3 - 10) / 2, 90, `pod ${pod}`, 'font-size="14" font-weight="bold" text-anchor="middle"'))
  }
  for (const lane of lanes(report))
    out.push(text(laneX.get(lane.key)!, 112, lane.title, 'font-size="13" text-anchor="middle" font-weight="bold"'))
  out.push(text(notesX, 112, 'what decided it (rule → verdict)', 'font-size="13" font-weight="bold"'))
  return out
}

function kindColor(h: Hop): string {
  if (h.kind === 'sidecar') return colors.sidecar
  if (/redirect|REDIRECT/.test(h.decision)) return colors.redirect
  if (h.verdict === 'return') return colors.return
  if (h.chains.length === 0) return colors.conntrack
  return colors.plain
}

function arrow(x1: number, x2: number, y: number, color: string, dashed: boolean): string {
  const dir = x2 >= x1 ? 1 : -1
  const tip = x2 - dir * 2
  return [
    `<line x1="${x1}" y1="${y}" x2="${tip - dir * 8}" y2="${y}" stroke="${color}" stroke-width="2.5"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    `<polygon points="${tip},${y} ${tip - dir * 11},${y - 6} ${tip - dir * 11},${y + 6}" fill="${color}"/>`,
  ].join('')
}

function badge(x: number, y: number, label: string, color: string): string {
  const w = Math.max(22, label.length * 8 + 10)
  return (
    `<rect x="${x - w / 2}" y="${y - 11}" width="${w}" height="22" rx="11" fill="#fff" stroke="${color}" stroke-width="2"/>` +
    text(x, y + 5, label, `font-size="12" font-weight="bold" text-anchor="middle" fill="${color}"`)
  )
}

function hopRow(h: Hop, y: number, laneX: Map<string, number>): string[] {
  const color = kindColor(h)
  const out: string[] = []
  const x1 = laneX.get(h.fromLane)
  const x2 = laneX.get(h.toLane)
  if (h.kind === 'sidecar') {
    const x = laneX.get(h.fromLane) ?? left
    out.push(`<rect x="${x - 52}" y="${y - 15}" width="104" height="30" rx="6" fill="#f3f0ff" stroke="${color}" stroke-width="2"/>`)
    out.push(text(x, y + 5, `${h.label} new conn`, `font-size="12" font-weight="bold" text-anchor="middle" fill="${color}"`))
  } else if (x1 !== undefined && x2 !== undefined) {
    if (h.wireFrom && laneX.has(h.wireFrom)) out.push(arrow(laneX.get(h.wireFrom)!, x1, y - 17, '#adb5bd', true))
    out.push(arrow(x1, x2, y, color, h.chains.length === 0))
    out.push(badge((x1 + x2) / 2, y, h.label, color))
  }
  out.push(text(notesX, y - 4, `${h.walk ? `[${h.walk}] ` : ''}${h.title}`, 'font-size="13" font-weight="bold"'))
  out.push(text(notesX, y + 13, h.decision, `font-size="12" fill="${color}" font-family="monospace"`))
  return out
}

function legend(y: number): string[] {
  const items: Array<[string, string, boolean]> = [
    [colors.redirect, 'nat rule REDIRECTs it to the sidecar (15001 out / 15006 in)', false],
    [colors.return, "nat rule RETURNs it: the sidecar's own connection is let through (no loop)", false],
    [colors.conntrack, 'no nat chain runs: a reply or a looped-back packet; conntrack handles it', true],
    [colors.plain, 'nat chains ran, nothing rewritten', false],
  ]
  const out = [text(20, y, 'legend', 'font-size="14" font-weight="bold"')]
  items.forEach(([c, label, dashed], i) => {
    const yy = y + 22 + i * 22
    out.push(arrow(30, 90, yy - 4, c, dashed), text(102, yy, label, 'font-size="12"'))
  })
  const yy = y + 22 + items.length * 22
  out.push(`<rect x="40" y="${yy - 15}" width="40" height="20" rx="4" fill="#f3f0ff" stroke="${colors.sidecar}" stroke-width="2"/>`)
  out.push(text(102, yy, 'the sidecar accepts, reads the original destination and opens a new TCP connection', 'font-size="12"'))
  out.push(text(102, yy + 22, 'dashed grey: the packet crossing the wire between the pods', 'font-size="12" fill="#868e96"'))
  return out
}

/** Greedy word wrap; SVG 1.1 text does not wrap by itself. */
export function wrap(s: string, max: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of s.split(' ')) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  return line ? [...lines, line] : lines
}

function answers(report: TraceReport, x: number, y: number): { svg: string[]; height: number } {
  const a = report.answers
  const svg: string[] = []
  let yy = y
  const para = (s: string, attrs: string, max = 110) => {
    for (const line of wrap(s, max)) {
      svg.push(text(x, yy, line, attrs))
      yy += 17
    }
  }
  para("Step 16 — does the sidecar's own traffic loop?", 'font-size="14" font-weight="bold"')
  if (a.loop.loops === false) {
    para('No. Its SYNs leave ISTIO_OUTPUT by a RETURN before the REDIRECT rule:', 'font-size="12"')
    for (const r of a.loop.returns)
      para(`step ${r.step} (${r.pod}): ${r.iptables ?? r.rule}`, 'font-size="12" font-family="monospace" fill="#2b8a3e"')
    if (a.loop.repliesSkipNat)
      para(
        `Replies (steps ${a.loop.replySteps.join(', ')}) never enter a nat chain: only a connection's first packet does.`,
        'font-size="12"',
      )
  } else para(a.loop.answer, 'font-size="12"')
  yy += 8
  para('A new TCP connection, or rewritten packets?', 'font-size="14" font-weight="bold"')
  if (a.newConnection.newConnection) {
    para('A new connection at each sidecar: every hop has its own socket (different source ports).', 'font-size="12"')
    for (const c of report.connections)
      para(`${c.role.padEnd(16)} ${fmt(c.client)} → ${fmt(c.server)}`, 'font-size="12" font-family="monospace" xml:space="preserve"')
  } else para(a.newConnection.answer, 'font-size="12"')
  return { svg, height: yy - y }
}

export function renderSvg(report: TraceReport): string {
  const laneX = new Map(lanes(report).map((l, i) => [l.key, left + i * laneGap]))
  const rows = hops(report)
  const bottom = top + rows.length * rowH + 10
  const told = answers(report, notesX - 40, bottom + 30)
  const height = bottom + Math.max(190, told.height + 50)
  const body: string[] = [`<rect width="${width}" height="${height}" fill="#fff"/>`, ...header(report, laneX)]
  for (const x of laneX.values())
    body.push(`<line x1="${x}" y1="${top - 8}" x2="${x}" y2="${bottom}" stroke="#ced4da" stroke-width="1.5"/>`)
  rows.forEach((h, i) => {
    const y = top + 22 + i * rowH
    if (i % 2 === 0) body.push(`<rect x="10" y="${y - 25}" width="${width - 20}" height="${rowH}" fill="#f8f9fa"/>`)
    body.push(...hopRow(h, y, laneX))
  })
  body.push(...legend(bottom + 30), ...told.svg)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">\n${body.join('\n')}\n</svg>\n`
}
