// @ts-check
// The Markdown table of a run (bench/results/latest.md): medians with min-max, and the ratios to direct and
// to HAProxy from the same run.
import { describe } from './stats.mjs'

/** @typedef {{ startedAt: string, seconds: number, loadAverageAtEnd?: number[], machine: ReturnType<typeof import('./machine.mjs').machine>, method: { quick: boolean, rounds: number, sizes: import('./scenarios.mjs').Sizes, scenarios: { id: string, title: string }[] }, samples: import('./stats.mjs').Sample[], summary: import('./stats.mjs').Summary }} Result */

/** @param {number | undefined} v @param {number} digits */
const num = (v, digits) =>
  v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })
/** @param {number | undefined} r */
const ratio = (r) => (r === undefined || !Number.isFinite(r) ? '—' : `${r.toFixed(2)}x`)

/** @param {import('./stats.mjs').Figure | undefined} f @param {number} digits */
function cell(f, digits) {
  if (!f) return '—'
  return f.n > 1 ? `${num(f.median, digits)} (${num(f.min, digits)}–${num(f.max, digits)})` : num(f.median, digits)
}

/** @param {Result} r @param {string} a @param {string} b @param {string[]} cols */
function rows(r, a, b, cols) {
  const out = []
  for (const s of r.method.scenarios) {
    for (const [metric, figs] of Object.entries(r.summary[s.id] ?? {})) {
      if (metric === 'errors' || !cols.some((c) => figs[c])) continue
      const d = describe(metric)
      const name = `${d.label}${d.unit ? ` (${d.unit})` : ''}`
      const fa = figs[a]
      out.push(
        `| ${s.id} | ${name} | ${cols.map((c) => cell(figs[c], d.digits)).join(' | ')} | ${ratio(fa?.vsDirect)} | ${ratio(figs[b]?.vsDirect)} | ${ratio(fa?.vsHaproxy)} |`,
      )
    }
  }
  return out
}

/**
 * sidecar-lab next to the floor relay (node:net and the addon, nothing else) and HAProxy, when the run had it.
 * @param {Result} r @param {string} position
 */
function floorRows(r, position) {
  const [lab, floor, hap] = ['sidecar-lab', 'node-floor', 'haproxy'].map((p) => `${p}/${position}`)
  const out = []
  for (const s of r.method.scenarios) {
    for (const [metric, figs] of Object.entries(r.summary[s.id] ?? {})) {
      const f = figs[floor ?? '']
      if (metric === 'errors' || !f) continue
      const d = describe(metric)
      const a = figs[lab ?? '']?.median
      const h = figs[hap ?? '']?.median
      out.push(
        `| ${s.id} | ${d.label}${d.unit ? ` (${d.unit})` : ''} | ${cell(figs[lab ?? ''], d.digits)} | ${cell(f, d.digits)} | ${cell(figs[hap ?? ''], d.digits)} | ${ratio(a && f.median ? a / f.median : undefined)} | ${ratio(h && f.median ? f.median / h : undefined)} |`,
      )
    }
  }
  return out
}

/**
 * REDIRECT next to TPROXY for both sidecar peers, when the run had the TPROXY peers (--peers ...-tproxy).
 * @param {Result} r @param {string} position
 */
function modeRows(r, position) {
  const cols = ['sidecar-lab', 'sidecar-lab-tproxy', 'haproxy', 'haproxy-tproxy'].map((p) => `${p}/${position}`)
  const out = []
  for (const s of r.method.scenarios) {
    for (const [metric, figs] of Object.entries(r.summary[s.id] ?? {})) {
      if (metric === 'errors' || (!figs[cols[1] ?? ''] && !figs[cols[3] ?? ''])) continue
      const d = describe(metric)
      const m = cols.map((c) => figs[c]?.median)
      // a ratio of latencies added over direct only reads when both were added (above zero)
      const per = (/** @type {number | undefined} */ a, /** @type {number | undefined} */ b) =>
        ratio(a !== undefined && b && (!metric.startsWith('added') || (a > 0 && b > 0)) ? a / b : undefined)
      out.push(
        `| ${s.id} | ${d.label}${d.unit ? ` (${d.unit})` : ''} | ${cols.map((c) => cell(figs[c], d.digits)).join(' | ')} | ${per(m[1], m[0])} | ${per(m[3], m[2])} |`,
      )
    }
  }
  return out
}

/** @param {Result} r */
export function renderMarkdown(r) {
  const m = r.machine
  const lines = [
    `# sidecar-lab benchmark, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `${m.nproc} cores (${m.cpu}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, HAProxy ${m.haproxy}. ` +
      `${r.method.rounds} interleaved round(s)${r.method.quick ? ' (--quick: short runs, not for comparison)' : ''}, ${r.seconds} s in all. ` +
      'Each cell: median (min–max over the rounds). Ratios are of medians from this run; ' +
      'for throughput higher is better, for latency, CPU and memory lower is better.',
    ...(m.loadAverageAtStart
      ? [
          '',
          `Load average (1, 5, 15 min) at the start ${m.loadAverageAtStart.join(', ')}, at the end ${r.loadAverageAtEnd?.join(', ') ?? '?'}: above 0 at the start is other work sharing the machine.`,
        ]
      : []),
    '',
    '## Both sidecars (client pod and server pod captured)',
    '',
    '| scenario | figure | direct | sidecar-lab | HAProxy | sidecar-lab ÷ direct | HAProxy ÷ direct | sidecar-lab ÷ HAProxy |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
    ...rows(r, 'sidecar-lab/both', 'haproxy/both', ['direct/none', 'sidecar-lab/both', 'haproxy/both']),
  ]
  for (const position of ['outbound', 'inbound']) {
    lines.push(
      '',
      `## ${position === 'outbound' ? 'Outbound sidecar only (client pod captured, server pod without rules)' : 'Inbound sidecar only (server pod captured, client pod without rules)'}`,
      '',
      '| scenario | figure | direct | sidecar-lab | HAProxy | sidecar-lab ÷ direct | HAProxy ÷ direct | sidecar-lab ÷ HAProxy |',
      '|---|---|--:|--:|--:|--:|--:|--:|',
      ...rows(r, `sidecar-lab/${position}`, `haproxy/${position}`, [
        'direct/none',
        `sidecar-lab/${position}`,
        `haproxy/${position}`,
      ]).filter((l) => !l.startsWith('| memory')),
    )
  }
  for (const position of ['both', 'outbound', 'inbound']) {
    const floor = floorRows(r, position)
    if (!floor.length) continue
    lines.push(
      '',
      `## The Node floor (bench/apps/floor-relay.mjs), ${position === 'both' ? 'both sidecars' : `${position} sidecar only`}`,
      '',
      '| scenario | figure | sidecar-lab | node-floor | HAProxy | sidecar-lab ÷ node-floor | node-floor ÷ HAProxy |',
      '|---|---|--:|--:|--:|--:|--:|',
      ...floor,
    )
  }
  for (const position of ['both', 'inbound']) {
    const modes = modeRows(r, position)
    if (!modes.length) continue
    lines.push(
      '',
      `## REDIRECT and TPROXY, ${position === 'both' ? 'both sidecars (TPROXY on the inbound side; outbound is REDIRECT in both modes)' : 'inbound sidecar only'}`,
      '',
      '| scenario | figure | sidecar-lab REDIRECT | sidecar-lab TPROXY | HAProxy REDIRECT | HAProxy TPROXY | sidecar-lab TPROXY ÷ REDIRECT | HAProxy TPROXY ÷ REDIRECT |',
      '|---|---|--:|--:|--:|--:|--:|--:|',
      ...modes,
    )
  }
  const failed = r.samples.filter((s) => s.error)
  const errors = r.samples.filter((s) => (s.metrics?.errors ?? 0) > 0)
  lines.push('', '## Runs', '', `${r.samples.length} runs, ${failed.length} failed, ${errors.length} with request errors.`)
  for (const s of failed) lines.push(`- round ${s.round} ${s.peer} ${s.position} ${s.scenario}: ${s.error}`)
  for (const s of errors) lines.push(`- round ${s.round} ${s.peer} ${s.position} ${s.scenario}: ${s.metrics?.errors} request errors`)
  lines.push('', 'Scenarios:', ...r.method.scenarios.map((s) => `- \`${s.id}\`: ${s.title}`), '')
  return lines.join('\n')
}
