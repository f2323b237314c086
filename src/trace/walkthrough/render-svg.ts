// --walkthrough --svg: the verdict table as a picture. One row per walkthrough step: its number, the claim,
// a coloured verdict badge (two for steps 9-15: as written, as the figure meant it), the finding, and the
// trace steps that belong to it.
import { wrap } from '../render/svg.js'
import { ranges } from '../render/ranges.js'
import type { Reading, WalkthroughReport } from './verdicts.js'

const colors = { confirmed: '#2b8a3e', corrected: '#d9480f', 'not observable': '#868e96' } as const
const lineH = 15
const cols = { n: 20, claim: 60, badge: 420, finding: 540, hops: 1320 }
const width = 1420

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function lines(x: number, y: number, rows: string[], attrs = ''): string[] {
  return rows.map((r, i) => `<text x="${x}" y="${y + i * lineH}" font-size="12" ${attrs}>${esc(r)}</text>`)
}

/** At most n lines; a cut is marked, the full text is in --walkthrough's text and JSON. */
function clip(rows: string[], n: number): string[] {
  return rows.length > n ? [...rows.slice(0, n - 1), `${rows[n - 1]} …`] : rows
}

function badge(x: number, y: number, r: Reading, label: string): string[] {
  const c = colors[r.verdict]
  return [
    `<rect x="${x}" y="${y - 12}" width="108" height="17" rx="4" fill="${c}"/>`,
    `<text x="${x + 54}" y="${y}" font-size="11" fill="#fff" text-anchor="middle" font-weight="bold">${esc(r.verdict)}</text>`,
    ...(label ? [`<text x="${x + 54}" y="${y + 15}" font-size="10" fill="#495057" text-anchor="middle">${esc(label)}</text>`] : []),
  ]
}

export function renderWalkthroughSvg(w: WalkthroughReport): string {
  const out: string[] = []
  let y = 90
  for (const s of w.steps) {
    const claim = wrap(s.claim, 48)
    const found = clip(wrap(s.finding, 105), 6)
    const meant = s.meant ? clip(wrap(s.meant.finding, 105), 5) : []
    const rowLines = Math.max(claim.length, found.length + (s.meant ? meant.length + 1 : 0), s.meant ? 4 : 2)
    out.push(`<line x1="10" y1="${y - 18}" x2="${width - 10}" y2="${y - 18}" stroke="#dee2e6"/>`)
    out.push(...lines(cols.n, y, [`w${s.n}`], 'font-weight="bold"'), ...lines(cols.claim, y, claim))
    out.push(...badge(cols.badge, y, s, s.meant ? 'as written' : ''), ...lines(cols.finding, y, found))
    if (s.meant) {
      const my = y + (found.length + 1) * lineH
      out.push(...badge(cols.badge, my, s.meant, 'as meant'), ...lines(cols.finding, my, meant, 'fill="#343a40"'))
    }
    out.push(...lines(cols.hops, y, [s.hops.length ? ranges(s.hops) : '-'], 'fill="#1c7ed6"'))
    y += rowLines * lineH + 16
  }
  const head = [
    `<text x="20" y="30" font-size="18" font-weight="bold">${esc(`The walkthrough's 15 steps, checked against the kernel: ${w.request.from} → ${w.request.to} (${w.request.status})`)}</text>`,
    `<text x="20" y="50" font-size="12" fill="#495057">${esc(`source: ${w.source}`)}</text>`,
    ...lines(cols.n, 74, ['step'], 'font-weight="bold"'),
    ...lines(cols.claim, 74, ['the walkthrough says'], 'font-weight="bold"'),
    ...lines(cols.badge, 74, ['verdict'], 'font-weight="bold"'),
    ...lines(cols.finding, 74, ['what the kernel shows in this run'], 'font-weight="bold"'),
    ...lines(cols.hops, 74, ['trace steps'], 'font-weight="bold"'),
  ]
  const q = [w.questions.loop, w.questions.newConnection].flatMap((a) => [`Q: ${a.question}`, ...wrap(`A: ${a.answer}`, 190)])
  const tail = lines(20, y + 4, q)
  const height = y + q.length * lineH + 20
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Menlo, Consolas, monospace">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...head,
    ...out,
    ...tail,
    '</svg>',
    '',
  ].join('\n')
}
