// @ts-check
// The chart of a run (bench/results/latest.svg): horizontal bars with min-max whiskers, in three panels:
// throughput relative to direct, latency at 1000 requests/s, and each sidecar's (the ztunnel's) memory and CPU. Every main
// peer the run measured gets its bars (report-md.mjs runPeers).
import { runPeers } from './report-md.mjs'

const colours = /** @type {Record<string, string>} */ ({
  direct: '#9e9e9e',
  'sidecar-lab': '#1f77b4',
  'sidecar-lab-native': '#2ca02c',
  haproxy: '#ff7f0e',
  'haproxy-splice': '#d62728',
  'haproxy-splice-auto': '#e377c2',
  'node-floor': '#9467bd',
  'haproxy-tls': '#8c564b',
  ambient: '#17becf',
})
/** @typedef {string} Peer */
/** @typedef {{ peer: Peer, value: number, min: number, max: number, text: string }} Bar */
/** @typedef {{ label: string, bars: Bar[] }} Row */
/** @typedef {{ title: string, rows: Row[], reference?: number, perRowScale?: boolean }} Panel */

const width = 900
const labelWidth = 250
const plotWidth = width - labelWidth - 140
const barHeight = 14

/** @param {string} s */
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** @param {Panel} panel @param {number} top @returns {{ svg: string, height: number }} */
function renderPanel(panel, top) {
  const parts = [`<text x="10" y="${top + 18}" class="title">${esc(panel.title)}</text>`]
  let y = top + 32
  const all = panel.rows.flatMap((r) => r.bars.map((b) => b.max))
  const globalMax = Math.max(panel.reference ?? 0, ...all) * 1.05 || 1
  const rowsTop = y
  // a row no peer of this run has (the ztunnel's, without the ambient peer) is left out
  for (const row of panel.rows.filter((r) => r.bars.length)) {
    const max = panel.perRowScale ? Math.max(...row.bars.map((b) => b.max)) * 1.05 || 1 : globalMax
    const x = (/** @type {number} */ v) => labelWidth + (Math.max(0, v) / max) * plotWidth
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + (row.bars.length * (barHeight + 2)) / 2 + 4}" text-anchor="end">${esc(row.label)}</text>`,
    )
    for (const b of row.bars) {
      parts.push(
        `<rect x="${labelWidth}" y="${y}" width="${(x(b.value) - labelWidth).toFixed(1)}" height="${barHeight}" fill="${colours[b.peer] ?? '#000'}"/>`,
        `<line x1="${x(b.min).toFixed(1)}" x2="${x(b.max).toFixed(1)}" y1="${y + barHeight / 2}" y2="${y + barHeight / 2}" stroke="#222" stroke-width="1"/>`,
        `<text x="${(Math.max(x(b.value), x(b.max)) + 5).toFixed(1)}" y="${y + barHeight - 3}" class="small">${esc(b.text)}</text>`,
      )
      y += barHeight + 2
    }
    y += 10
  }
  if (panel.reference !== undefined) {
    const rx = labelWidth + (panel.reference / globalMax) * plotWidth
    parts.push(
      `<line x1="${rx}" x2="${rx}" y1="${rowsTop - 4}" y2="${y - 8}" stroke="#444" stroke-dasharray="4 3"/>`,
      `<text x="${rx + 3}" y="${rowsTop - 6}" class="small">direct = 1.0</text>`,
    )
  }
  return { svg: parts.join('\n'), height: y - top + 8 }
}

/** @param {import('./report-md.mjs').Result} r @returns {Panel[]} */
function panels(r) {
  const s = r.summary
  const sidecars = runPeers(r)
    .map((p) => p.name)
    .filter((p) => p !== 'direct')
  /** @param {string} scenario @param {string} metric @param {Peer} peer @param {string} position @param {(v: number) => string} fmt @param {boolean} [relative] @returns {Bar[]} */
  const bar = (scenario, metric, peer, position, fmt, relative = false) => {
    const f = s[scenario]?.[metric]?.[`${peer}/${position}`]
    const d = s[scenario]?.[metric]?.['direct/none']?.median
    if (!f || (relative && !d)) return []
    const k = relative && d ? 1 / d : 1
    return [
      {
        peer,
        value: f.median * k,
        min: f.min * k,
        max: f.max * k,
        text: relative ? `${(f.median * k).toFixed(2)}x (${fmt(f.median)})` : fmt(f.median),
      },
    ]
  }
  const rel = (
    /** @type {string} */ label,
    /** @type {string} */ scenario,
    /** @type {string} */ metric,
    /** @type {(v: number) => string} */ fmt,
  ) => ({
    label,
    bars: sidecars.flatMap((p) => bar(scenario, metric, p, 'both', fmt, true)),
  })
  const ms = (/** @type {number} */ v) => `${v.toFixed(3)} ms`
  const lat = (/** @type {string} */ p) => ({
    label: `${p} at 1000 req/s, 1 KB`,
    bars: ['direct', ...sidecars].flatMap((peer) => bar('fixed-1k', p, peer, peer === 'direct' ? 'none' : 'both', ms)),
  })
  const side = (
    /** @type {string} */ label,
    /** @type {string} */ scenario,
    /** @type {string} */ metric,
    /** @type {(v: number) => string} */ fmt,
  ) => ({
    label,
    bars: sidecars.flatMap((p) => bar(scenario, metric, p, 'both', fmt)),
  })
  const mbps = (/** @type {number} */ v) => `${v.toFixed(0)} MB/s`
  const per = (/** @type {string} */ unit) => (/** @type {number} */ v) => `${v.toFixed(0)} ${unit}`
  return [
    {
      title: 'Through both sidecars, relative to direct (higher is better)',
      reference: 1,
      rows: [
        rel('bulk TCP, 1 stream', 'bulk-1', 'MBps', mbps),
        rel('bulk TCP, 8 streams', 'bulk-8', 'MBps', mbps),
        rel('keep-alive (autocannon -c10)', 'http', 'rps', per('req/s')),
        rel('keep-alive (wrk -c16)', 'wrk', 'rps', per('req/s')),
        rel('new connections/s', 'cps', 'cps', per('conn/s')),
      ],
    },
    { title: 'Latency at 1000 requests/s, 4 connections, 1 KB responses (ms, lower is better)', rows: ['p50', 'p90', 'p99'].map(lat) },
    {
      title: 'Each sidecar (ambient: the ztunnel): memory per idle connection, CPU per 1000 requests and per GB (lower is better)',
      perRowScale: true,
      rows: [
        side('outbound, KB per connection', 'memory', 'kbPerConnOut', (v) => `${v.toFixed(1)} KB`),
        side('inbound, KB per connection', 'memory', 'kbPerConnIn', (v) => `${v.toFixed(1)} KB`),
        side('outbound, CPU ms/1000 req at 1k/s', 'fixed-1k', 'cpuPer1kReqOut', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('inbound, CPU ms/1000 req at 1k/s', 'fixed-1k', 'cpuPer1kReqIn', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('outbound, CPU ms/1000 req, wrk', 'wrk', 'cpuPer1kReqOut', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('inbound, CPU ms/1000 req, wrk', 'wrk', 'cpuPer1kReqIn', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('outbound, CPU s per GB, 8 streams', 'bulk-8', 'cpuPerGBOut', (v) => `${v.toFixed(2)} s`),
        side('inbound, CPU s per GB, 8 streams', 'bulk-8', 'cpuPerGBIn', (v) => `${v.toFixed(2)} s`),
        // ambient: one ztunnel for both pods, so its own rows (to compare with outbound + inbound above)
        side('ztunnel (both pods), KB per connection', 'memory', 'kbPerConnZtunnel', (v) => `${v.toFixed(1)} KB`),
        side('ztunnel (both pods), CPU ms/1000 req at 1k/s', 'fixed-1k', 'cpuPer1kReqZtunnel', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('ztunnel (both pods), CPU ms/1000 req, wrk', 'wrk', 'cpuPer1kReqZtunnel', (v) => `${(v * 1000).toFixed(0)} ms`),
        side('ztunnel (both pods), CPU s per GB, 8 streams', 'bulk-8', 'cpuPerGBZtunnel', (v) => `${v.toFixed(2)} s`),
      ],
    },
  ]
}

/** @param {import('./report-md.mjs').Result} r */
export function renderSvg(r) {
  const m = r.machine
  const parts = []
  let y = 50
  for (const p of panels(r)) {
    const { svg, height } = renderPanel(p, y)
    parts.push(svg)
    y += height
  }
  // two legend entries a line: the labels are long ("sidecar-lab (native relay)")
  const legend = runPeers(r).map(
    (p, i) =>
      `<rect x="${30 + (i % 3) * 290}" y="${y + Math.floor(i / 3) * 18}" width="12" height="12" fill="${colours[p.name] ?? '#000'}"/>` +
      `<text x="${30 + (i % 3) * 290 + 17}" y="${y + Math.floor(i / 3) * 18 + 11}">${esc(p.label)}</text>`,
  )
  const height = y + 40 + Math.floor((runPeers(r).length - 1) / 3) * 18
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    '<style>.title { font-size: 14px; font-weight: bold } .small { font-size: 11px; fill: #333 }</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" class="title">sidecar-lab (node and native relay) vs HAProxy vs direct${r.method.quick ? ' (quick run, not for comparison)' : ''}</text>`,
    `<text x="10" y="36" class="small">${m.nproc} cores, Linux ${esc(m.kernel)}, Node ${m.node}, HAProxy ${esc(m.haproxy)}; bars: median of ${r.method.rounds} round(s), whiskers: min-max</text>`,
    ...parts,
    ...legend,
    '</svg>',
    '',
  ].join('\n')
}
