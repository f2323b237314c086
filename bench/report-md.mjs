// @ts-check
// The Markdown table of a run (bench/results/latest.md): medians with min-max, the ratios to HAProxy and
// HAProxy's to direct from the same run, and the native engine's goals.
import { goalLines } from './goals.mjs'
import { describe } from './stats.mjs'

/**
 * @typedef {{ startedAt: string, seconds: number, loadAverageAtEnd?: number[], machine: ReturnType<typeof import('./machine.mjs').machine>,
 *   method: { quick: boolean, rounds: number, sizes: import('./scenarios.mjs').Sizes, scenarios: { id: string, title: string }[],
 *     peers?: { name: string, label?: string }[], haproxy?: { nbthread: number, chosenBy: string, trial?: { choice: import('./haproxy-best.mjs').Choice } | undefined },
 *     nativeRelay?: { available: boolean, reason: string } },
 *   samples: import('./stats.mjs').Sample[], summary: import('./stats.mjs').Summary, goals?: import('./goals.mjs').Verdict[] }} Result
 */

/** The main table's peers, in the bench's order, and their names when a run (an older one) gives none. */
export const mainPeers = [
  'direct',
  'sidecar-lab',
  'sidecar-lab-native',
  'haproxy',
  'haproxy-splice',
  'haproxy-splice-auto',
  'node-floor',
  'haproxy-tls',
  'ambient',
]
const defaultLabels = /** @type {Record<string, string>} */ ({
  direct: 'direct',
  'sidecar-lab': 'sidecar-lab (node relay)',
  'sidecar-lab-native': 'sidecar-lab (native relay)',
  haproxy: 'HAProxy',
  'haproxy-splice': 'HAProxy splice',
  'haproxy-splice-auto': 'HAProxy splice-auto',
  'node-floor': 'node-floor',
  'haproxy-tls': 'HAProxy TLS',
  ambient: 'ambient (ztunnel)',
})

/**
 * The main peers this run measured (in `position` when given; direct always), with their labels.
 * @param {Result} r @param {string} [position] @returns {{ name: string, label: string }[]}
 */
export function runPeers(r, position) {
  const measured = new Set(r.samples.filter((s) => !position || s.peer === 'direct' || s.position === position).map((s) => s.peer))
  return mainPeers
    .filter((p) => measured.has(p))
    .map((name) => ({ name, label: r.method.peers?.find((p) => p.name === name)?.label ?? defaultLabels[name] ?? name }))
}

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

/**
 * The table of every main peer in one position: a column per peer, then each sidecar's ratio to HAProxy and
 * HAProxy's to direct.
 * @param {Result} r @param {string} position
 */
function table(r, position) {
  // a peer measured in both only (ambient, the TLS pair) has no column in the one-sided tables
  const peers = runPeers(r, position)
  const config = (/** @type {string} */ p) => (p === 'direct' ? 'direct/none' : `${p}/${position}`)
  const vsHap = peers.filter((p) => p.name !== 'direct' && p.name !== 'haproxy')
  const hap = peers.find((p) => p.name === 'haproxy')
  const head = [
    'scenario',
    'figure',
    ...peers.map((p) => p.label),
    ...(hap ? vsHap.map((p) => `${p.label} ÷ HAProxy`) : []),
    ...(hap ? ['HAProxy ÷ direct'] : []),
  ]
  const out = [
    `| ${head.join(' | ')} |`,
    `|---|---|${head
      .slice(2)
      .map(() => '--:|')
      .join('')}`,
  ]
  for (const s of r.method.scenarios) {
    if (position !== 'both' && s.id === 'memory') continue
    for (const [metric, figs] of Object.entries(r.summary[s.id] ?? {})) {
      if (metric === 'errors' || !peers.some((p) => p.name !== 'direct' && figs[config(p.name)])) continue
      const d = describe(metric)
      const cells = [
        ...peers.map((p) => cell(figs[config(p.name)], d.digits)),
        ...(hap ? vsHap.map((p) => ratio(figs[config(p.name)]?.vsHaproxy)) : []),
        ...(hap ? [ratio(figs[config('haproxy')]?.vsDirect)] : []),
      ]
      out.push(`| ${s.id} | ${d.label}${d.unit ? ` (${d.unit})` : ''} | ${cells.join(' | ')} |`)
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

/** What the peers measured in the position both only are, and why only there. @param {Result} r */
function bothOnlyNotes(r) {
  const label = (/** @type {string} */ name) => runPeers(r).find((p) => p.name === name)?.label
  const out = []
  const ambient = label('ambient')
  if (ambient)
    out.push(
      '',
      `${ambient}: no sidecar; the in-pod rules in both pods and the node's ztunnel, as \`lab up --ambient\` starts it, ` +
        "in the position both only: one ztunnel serves both pods. Its CPU and memory rows are that one process's " +
        '(utime+stime, VmRSS), named "ztunnel (one process, both pods)", where the sidecars have an outbound and an inbound row.',
    )
  const tls = label('haproxy-tls')
  if (tls)
    out.push(
      '',
      `${tls}: the HAProxy pair with mutual TLS between them (the lab's certificates), in the position both only: ` +
        'TLS alone, without a tunnel. The sidecars carry plaintext between the pods; HBONE carries TLS.',
    )
  return out
}

/** @param {Result} r */
export function renderMarkdown(r) {
  const m = r.machine
  const hap = r.method.haproxy
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
    ...(hap
      ? [
          '',
          `HAProxy: nbthread ${hap.nbthread}, chosen by ${hap.chosenBy === 'trial' ? 'a trial of nbthread 1 and 2 on the keep-alive and bulk scenarios' : hap.chosenBy}` +
            (hap.trial
              ? ` (nbthread 1 ÷ 2: ${Object.entries(hap.trial.choice.ratios)
                  .map(([k, v]) => `${k} ${v.toFixed(2)}x`)
                  .join(', ')}).`
              : '.'),
        ]
      : []),
    ...bothOnlyNotes(r),
    ...(r.method.nativeRelay && !r.method.nativeRelay.available
      ? ['', `The native relay peer was left out: ${r.method.nativeRelay.reason}.`]
      : []),
    ...(r.goals
      ? [
          '',
          "## The native engine's goals: the native relay against HAProxy, both sidecars, medians",
          '',
          '```',
          ...goalLines(r.goals),
          '```',
        ]
      : []),
    '',
    '## Both sidecars (client pod and server pod captured; ambient: the one ztunnel serving both)',
    '',
    ...table(r, 'both'),
  ]
  for (const position of ['outbound', 'inbound']) {
    // a run of peers measured in both only (ambient, the TLS pair) has no one-sided table
    if (!runPeers(r, position).some((p) => p.name !== 'direct')) continue
    lines.push(
      '',
      `## ${position === 'outbound' ? 'Outbound sidecar only (client pod captured, server pod without rules)' : 'Inbound sidecar only (server pod captured, client pod without rules)'}`,
      '',
      ...table(r, position),
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
