// @ts-check
// The native engine's goals (issue 18's targets; issue 13's where issue 18 names none), checked on a run's summary:
// the native relay against the best HAProxy (or HAProxy splicing, for bulk), both sidecars, medians of the
// interleaved rounds; and the node relay against a baseline run ("must not get slower than
// today"). Pure functions of summaries, so test/bench/goals.test.ts can check every verdict.

/**
 * @typedef {{ id: string, text: string, scenario: string, metrics: string[], better: 'higher' | 'lower', target: number, against?: 'splice' }} Goal
 * metrics: summed (medians) when more than one, e.g. the outbound and the inbound sidecar's CPU per GB;
 * target: the ratio native ÷ HAProxy must reach (at least it when higher is better, at most it when lower);
 * against 'splice': the reference is the HAProxy peer that splices (haproxy-splice), not the best HAProxy.
 */
/** @type {Goal[]} */
export const goals = [
  { id: 'keep-alive', text: 'keep-alive requests/s (wrk -c16) >= 1.1x', scenario: 'wrk', metrics: ['rps'], better: 'higher', target: 1.1 },
  {
    id: 'cpu-1k-req',
    text: 'CPU per 1000 requests (wrk -c16, both sidecars) <= 0.9x',
    scenario: 'wrk',
    metrics: ['cpuPer1kReqOut', 'cpuPer1kReqIn'],
    better: 'lower',
    target: 0.9,
  },
  { id: 'bulk-1', text: 'bulk throughput, 1 stream >= 1.3x', scenario: 'bulk-1', metrics: ['MBps'], better: 'higher', target: 1.3 },
  { id: 'bulk-8', text: 'bulk throughput, 8 streams >= 1.3x', scenario: 'bulk-8', metrics: ['MBps'], better: 'higher', target: 1.3 },
  {
    id: 'bulk-1-splice',
    text: 'bulk throughput, 1 stream >= 1.0x HAProxy splice',
    scenario: 'bulk-1',
    metrics: ['MBps'],
    better: 'higher',
    target: 1,
    against: 'splice',
  },
  {
    id: 'bulk-8-splice',
    text: 'bulk throughput, 8 streams >= 1.0x HAProxy splice',
    scenario: 'bulk-8',
    metrics: ['MBps'],
    better: 'higher',
    target: 1,
    against: 'splice',
  },
  {
    id: 'cpu-gb-1',
    text: 'CPU per GB, 1 stream (both sidecars) <= 0.8x',
    scenario: 'bulk-1',
    metrics: ['cpuPerGBOut', 'cpuPerGBIn'],
    better: 'lower',
    target: 0.8,
  },
  {
    id: 'cpu-gb-8',
    text: 'CPU per GB, 8 streams (both sidecars) <= 0.8x',
    scenario: 'bulk-8',
    metrics: ['cpuPerGBOut', 'cpuPerGBIn'],
    better: 'lower',
    target: 0.8,
  },
  { id: 'cps', text: 'new connections/s >= 1.0x', scenario: 'cps', metrics: ['cps'], better: 'higher', target: 1 },
  {
    id: 'memory',
    text: 'memory per idle proxied connection (both sidecars) <= 1.0x',
    scenario: 'memory',
    metrics: ['kbPerConnOut', 'kbPerConnIn'],
    better: 'lower',
    target: 1,
  },
  {
    id: 'p99-added',
    text: "p99 added over direct at 1000 requests/s <= HAProxy's",
    scenario: 'fixed-1k',
    metrics: ['addedP99'],
    better: 'lower',
    target: 1,
  },
]

/**
 * @typedef {{ id: string, text: string, value?: number | undefined, reference?: number | undefined, ratio?: number | undefined, met: boolean | null, note: string, against?: string }} Verdict
 * value: the native peer's figure, reference: HAProxy's (against: which HAProxy, when not the best); met is null
 * when a figure is missing.
 */

/** Sum of the medians of `metrics` for one config, undefined when any is missing. @param {import('./stats.mjs').Summary} summary @param {Goal} g @param {string} config */
function figure(summary, g, config) {
  let sum = 0
  for (const metric of g.metrics) {
    const f = summary[g.scenario]?.[metric]?.[config]
    if (!f || !Number.isFinite(f.median)) return undefined
    sum += f.median
  }
  return sum
}

/**
 * Each goal with the native peer's figure, HAProxy's, the ratio and met/missed. An added latency is met when
 * the native one is not above HAProxy's; its ratio is only given when both are above zero (a difference of
 * two noisy latencies can come out negative).
 * @param {import('./stats.mjs').Summary} summary
 * @param {{ native?: string, haproxy?: string, splice?: string, position?: string }} [peers]
 * @returns {Verdict[]}
 */
export function checkGoals(
  summary,
  { native = 'sidecar-lab-native', haproxy = 'haproxy', splice = 'haproxy-splice', position = 'both' } = {},
) {
  return goals.map((g) => {
    const ref = g.against === 'splice' ? splice : haproxy
    const against = g.against === 'splice' ? { against: 'HAProxy splice' } : {}
    const value = figure(summary, g, `${native}/${position}`)
    const reference = figure(summary, g, `${ref}/${position}`)
    if (value === undefined || reference === undefined)
      return { id: g.id, text: g.text, value, reference, met: null, note: `no ${value === undefined ? native : ref} figure`, ...against }
    const additive = g.metrics.every((m) => m.startsWith('added'))
    const readable = additive ? value > 0 && reference > 0 : reference > 0
    const ratio = readable ? value / reference : undefined
    const met = additive ? value <= reference : ratio !== undefined && (g.better === 'higher' ? ratio >= g.target : ratio <= g.target)
    return { id: g.id, text: g.text, value, reference, ratio, met, note: '', ...against }
  })
}

/** The node relay's figures that "must not get slower than today", with which way is better. */
export const nodeFigures = /** @type {const} */ ([
  ['http', 'rps', 'higher'],
  ['wrk', 'rps', 'higher'],
  ['bulk-1', 'MBps', 'higher'],
  ['bulk-8', 'MBps', 'higher'],
  ['cps', 'cps', 'higher'],
  ['fixed-1k', 'addedP99', 'lower'],
])

/**
 * The node relay now against a baseline run (both sidecars): met when its median is within the baseline's
 * min-max or better, i.e. not below the slowest round of the baseline. Figures the baseline lacks are left
 * out. Across machines the comparison means nothing: null verdicts then, with the reason.
 * @param {import('./stats.mjs').Summary} now
 * @param {import('./stats.mjs').Summary} baseline
 * @param {{ peer?: string, sameMachine?: boolean }} [o]
 * @returns {{ id: string, value: number, baseline: import('./stats.mjs').Figure, met: boolean | null }[]}
 */
export function checkNodeRelay(now, baseline, { peer = 'sidecar-lab', sameMachine = true } = {}) {
  const out = []
  for (const [scenario, metric, better] of nodeFigures) {
    const f = now[scenario]?.[metric]?.[`${peer}/both`]
    const b = baseline[scenario]?.[metric]?.['sidecar-lab/both']
    if (!f || !b) continue
    const met = better === 'higher' ? f.median >= b.min : f.median <= b.max
    out.push({ id: `${scenario} ${metric}`, value: f.median, baseline: b, met: sameMachine ? met : null })
  }
  return out
}

/** @param {number | undefined} v */
const fmt = (v) => (v === undefined ? '—' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3))

/** The goals as lines for the console and the Markdown. @param {Verdict[]} verdicts */
export function goalLines(verdicts) {
  return verdicts.map(
    (v) =>
      `${v.met === null ? 'n/a   ' : v.met ? 'met   ' : 'MISSED'} ${v.text}: ${v.ratio === undefined ? '—' : `${v.ratio.toFixed(2)}x`} ` +
      `(native ${fmt(v.value)}, ${v.against ?? 'HAProxy'} ${fmt(v.reference)})${v.note ? ` ${v.note}` : ''}`,
  )
}
