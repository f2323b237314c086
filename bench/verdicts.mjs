// @ts-check
// What a run may conclude. A quick run (1 round of 1-2 s runs, 10 and 100 idle connections) shows that every
// peer and scenario runs, nothing more: it prints no goal verdicts. A memory slope is given only over enough
// idle connections for their cost to stand out of the RSS's own movement (the allocator, a GC), and only
// when RSS grew. Pure functions, so test/bench/verdicts.test.ts checks what is printed.
import { goalLines } from './goals.mjs'

/** Fewer idle connections than this between the memory scenario's first and last step give no slope. */
export const minSlopeConnections = 1000

/**
 * KB per idle connection from the RSS at `lo` and at `hi` connections, or why there is none.
 * @param {number | undefined} loMB @param {number | undefined} hiMB @param {number} lo @param {number} hi
 * @returns {{ kb: number } | { why: string }}
 */
export function memorySlope(loMB, hiMB, lo, hi) {
  if (hi - lo < minSlopeConnections)
    return { why: `${hi - lo} idle connections are too few for a slope (RSS moves more than they cost; at least ${minSlopeConnections})` }
  if (loMB === undefined || hiMB === undefined) return { why: `no RSS at ${lo} or ${hi} connections` }
  const kb = ((hiMB - loMB) * 1024) / (hi - lo)
  if (!(kb > 0))
    return { why: `RSS fell from ${loMB.toFixed(1)} to ${hiMB.toFixed(1)} MB (${lo} to ${hi} connections): a GC ran between, no slope` }
  return { kb }
}

/**
 * The memory scenario's figures: kbPerConnOut and kbPerConnIn (kbPerConnZtunnel in ambient mode) when a slope
 * holds, else a line saying why not.
 */
export const memorySides = /** @type {const} */ ([
  ['Out', "outbound sidecar's"],
  ['In', "inbound sidecar's"],
  ['Ztunnel', "ztunnel's (both pods)"],
])

/**
 * @param {Record<string, number>} m the memory scenario's metrics (rssOutMB@N, rssInMB@N or rssZtunnelMB@N)
 * @param {number[]} idle the connection counts it stepped through
 * @returns {{ metrics: Record<string, number>, notes: string[] }}
 */
export function memoryFigures(m, idle) {
  const lo = idle[0] ?? 0
  const hi = idle[idle.length - 1] ?? 0
  /** @type {Record<string, number>} */
  const metrics = {}
  const notes = []
  for (const [key, side] of memorySides) {
    // a side the peer does not have (sidecars or a ztunnel) has no RSS at all
    if (!Object.keys(m).some((k) => k.startsWith(`rss${key}MB@`))) continue
    const slope = memorySlope(m[`rss${key}MB@${lo}`], m[`rss${key}MB@${hi}`], lo, hi)
    if ('kb' in slope) metrics[`kbPerConn${key}`] = slope.kb
    else notes.push(`${side} memory per connection not given: ${slope.why}`)
  }
  return { metrics, notes }
}

/** What a quick run says instead of verdicts. */
export const smokeTestLine =
  'bench: a quick run is a smoke test (1 round of 1-2 s runs) that every peer and scenario runs; it gives no verdicts (npm run bench measures)'

/**
 * The closing lines: the native engine's goals and the node relay against its baseline, or for a quick run only that it is a smoke test.
 * @param {{ method: { quick: boolean }, goals?: import('./goals.mjs').Verdict[], nodeRelay?: { baseline: { file: string, commit?: string, startedAt?: string, cpu?: string, sameMachine: boolean }, figures: { id: string, value: number, baseline: import('./stats.mjs').Figure, met: boolean | null }[] } }} result
 * @param {{ nbthread: number, nativeNote?: string }} o nativeNote: why the native peer is not in this run, if it is not
 * @returns {string[]}
 */
export function verdictLines(result, { nbthread, nativeNote }) {
  if (result.method.quick) return [smokeTestLine]
  const lines = [`bench: the native engine's goals, sidecar-lab-native against HAProxy (nbthread ${nbthread}), both sidecars, medians:`]
  if (nativeNote) lines.push(`  (no native peer in this run: ${nativeNote})`)
  for (const line of goalLines(result.goals ?? [])) lines.push(`  ${line}`)
  if (result.nodeRelay) {
    const b = result.nodeRelay.baseline
    lines.push(
      `bench: the node relay against ${b.file} (${b.commit}, ${b.startedAt}${b.sameMachine ? '' : `; another machine: ${b.cpu}, not comparable`}):`,
    )
    for (const f of result.nodeRelay.figures)
      lines.push(
        `  ${f.met === null ? 'n/a   ' : f.met ? 'met   ' : 'MISSED'} ${f.id}: ${f.value.toFixed(3)} (baseline ${f.baseline.median.toFixed(3)}, ${f.baseline.min.toFixed(3)}-${f.baseline.max.toFixed(3)})`,
      )
  }
  return lines
}
