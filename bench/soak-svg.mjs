// @ts-check
// The soak's plot (soak.svg): each sidecar's RSS, descriptors and event-loop delay over time, one panel
// each, outbound and inbound as two lines; the warm-up third shaded, the peer kills as dashed lines.

const width = 900
const left = 70
const plotWidth = width - left - 30
const panelHeight = 150
const colours = { outbound: '#1f77b4', inbound: '#ff7f0e' }
/** @typedef {'outbound' | 'inbound'} Side */

/** @param {string} s */
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A round axis maximum: 1, 2 or 5 times a power of ten, at least max. @param {number} max */
function niceMax(max) {
  if (!(max > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(max))
  return ([1, 2, 5, 10].find((k) => k * p >= max) ?? 10) * p
}

/**
 * @param {any} r the soak's result
 * @param {string} title
 * @param {(s: import('./soak-report.mjs').SidecarSample | undefined) => number} value
 * @param {number} top
 */
function panel(r, title, value, top) {
  /** @type {import('./soak-report.mjs').Sample[]} */
  const samples = r.samples
  const tMax = Math.max(r.loadSeconds, ...samples.map((s) => s.t)) || 1
  const values = samples.flatMap((s) => [value(s.outbound), value(s.inbound)]).filter((v) => Number.isFinite(v))
  const yMax = niceMax(Math.max(...values, 0) * 1.05)
  const x = (/** @type {number} */ t) => left + (t / tMax) * plotWidth
  const y = (/** @type {number} */ v) => top + 24 + panelHeight - (v / yMax) * panelHeight
  const bottom = top + 24 + panelHeight
  const parts = [
    `<text x="10" y="${top + 16}" class="title">${esc(title)}</text>`,
    `<rect x="${left}" y="${top + 24}" width="${(x(samples[Math.floor(samples.length / 3)]?.t ?? 0) - left).toFixed(1)}" height="${panelHeight}" fill="#f2f2f2"/>`,
    `<line x1="${left}" x2="${left + plotWidth}" y1="${bottom}" y2="${bottom}" stroke="#444"/>`,
    `<line x1="${left}" x2="${left}" y1="${top + 24}" y2="${bottom}" stroke="#444"/>`,
  ]
  for (const k of [0, 0.5, 1]) {
    parts.push(`<text x="${left - 6}" y="${y(k * yMax) + 4}" text-anchor="end" class="small">${Number((k * yMax).toPrecision(3))}</text>`)
    if (k) parts.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${y(k * yMax)}" y2="${y(k * yMax)}" stroke="#ddd"/>`)
  }
  for (const k of r.kills)
    parts.push(
      `<line x1="${x(k.killedAt).toFixed(1)}" x2="${x(k.killedAt).toFixed(1)}" y1="${top + 24}" y2="${bottom}" stroke="#d62728" stroke-dasharray="3 3"/>`,
    )
  for (const side of /** @type {Side[]} */ (['outbound', 'inbound'])) {
    const points = samples.filter((s) => Number.isFinite(value(s[side]))).map((s) => `${x(s.t).toFixed(1)},${y(value(s[side])).toFixed(1)}`)
    if (points.length) parts.push(`<polyline fill="none" stroke="${colours[side]}" stroke-width="1.5" points="${points.join(' ')}"/>`)
  }
  for (const k of [0, 0.25, 0.5, 0.75, 1])
    parts.push(`<text x="${x(k * tMax)}" y="${bottom + 14}" text-anchor="middle" class="small">${Math.round(k * tMax)} s</text>`)
  return { svg: parts.join('\n'), height: panelHeight + 50 }
}

/** @param {any} r */
export function renderSoakSvg(r) {
  const specs = /** @type {const} */ ([
    ['RSS (MiB)', (/** @type {any} */ s) => s?.rssMiB ?? NaN],
    ['open file descriptors', (/** @type {any} */ s) => s?.fds ?? NaN],
    ['event-loop delay, max of each 5 s window (ms)', (/** @type {any} */ s) => s?.loopMaxMs ?? NaN],
  ])
  let y = 48
  const parts = []
  for (const [title, fn] of specs) {
    const p = panel(r, title, fn, y)
    parts.push(p.svg)
    y += p.height
  }
  const legend = [
    .../** @type {Side[]} */ (['outbound', 'inbound']).map(
      (s, i) =>
        `<rect x="${left + i * 170}" y="${y}" width="12" height="12" fill="${colours[s]}"/><text x="${left + i * 170 + 17}" y="${y + 11}">${s} sidecar</text>`,
    ),
    `<line x1="${left + 340}" x2="${left + 352}" y1="${y + 6}" y2="${y + 6}" stroke="#d62728" stroke-dasharray="3 3"/><text x="${left + 357}" y="${y + 11}">peer killed</text>`,
    `<rect x="${left + 470}" y="${y}" width="12" height="12" fill="#f2f2f2" stroke="#ccc"/><text x="${left + 487}" y="${y + 11}">warm-up (first third)</text>`,
  ]
  const height = y + 30
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    '<style>.title { font-size: 14px; font-weight: bold } .small { font-size: 11px; fill: #333 }</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" class="title">sidecar-lab soak: ${r.loadSeconds} s of mixed load through both sidecars</text>`,
    `<text x="10" y="36" class="small">${r.machine.nproc} cores, Linux ${esc(r.machine.kernel)}, Node ${r.machine.node}; samples every ${r.sampleMs / 1000} s; started ${esc(r.startedAt)}</text>`,
    ...parts,
    ...legend,
    '</svg>',
    '',
  ].join('\n')
}
