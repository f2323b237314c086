// @ts-check
// HAProxy at its best on this machine: before the rounds, the bench runs the keep-alive (wrk) and bulk
// scenarios through both sidecars with nbthread 1 and with nbthread 2, interleaved, and keeps the thread count
// with the higher throughput as the "haproxy" peer (on 2 cores that the client, the server and both sidecars
// share, one thread per sidecar can beat two). `pickNbthread` is the decision, a pure function of the samples.
import { haproxyPeer } from './peers.mjs'
import { median } from './stats.mjs'

/** The scenarios the choice rests on, with the figure (higher is better) each is judged by. */
export const trialFigures = /** @type {const} */ ([
  ['wrk', 'rps'],
  ['bulk-1', 'MBps'],
  ['bulk-8', 'MBps'],
])
export const trialThreads = /** @type {const} */ ([1, 2])

/**
 * @typedef {{ nbthread: number, ratios: Record<string, number>, score: number }} Choice
 * ratios: per scenario, the median with 1 thread over the median with 2; score: their geometric mean. One
 * thread is kept when the score is at least 1 (a tie keeps the thread count the issue found better here).
 */

/**
 * @param {{ nbthread: number, scenario: string, metrics?: Record<string, number> }[]} samples trial runs
 * @returns {Choice}
 */
export function pickNbthread(samples) {
  /** @type {Record<string, number>} */
  const ratios = {}
  for (const [scenario, metric] of trialFigures) {
    /** @param {number} n */
    const med = (n) =>
      median(
        samples
          .filter((s) => s.nbthread === n && s.scenario === scenario)
          .map((s) => s.metrics?.[metric] ?? NaN)
          .filter(Number.isFinite),
      )
    const r = med(1) / med(2)
    if (Number.isFinite(r) && r > 0) ratios[scenario] = r
  }
  const logs = Object.values(ratios).map(Math.log)
  if (!logs.length) return { nbthread: 2, ratios, score: NaN }
  const score = Math.exp(logs.reduce((a, b) => a + b, 0) / logs.length)
  return { nbthread: score >= 1 ? 1 : 2, ratios, score }
}

/**
 * Runs the trial: `rounds` rounds of (nbthread 1, nbthread 2), each a fresh HAProxy pair through both
 * sidecars running the trial scenarios. A failed run is recorded with its error and left out of the choice.
 * @param {{ lab: import('./harness.mjs').BenchLab, sizes: import('./scenarios.mjs').Sizes, rounds: number,
 *   scenarios: import('./scenarios.mjs').Scenario[], stopping: () => boolean, log: (line: string) => void }} o
 */
export async function haproxyTrial(o) {
  /** @type {{ round: number, nbthread: number, scenario: string, metrics?: Record<string, number>, error?: string }[]} */
  const samples = []
  await o.lab.setPosition('both')
  for (let round = 1; round <= o.rounds && !o.stopping(); round++) {
    for (const nbthread of trialThreads) {
      await o.lab.startSidecars(haproxyPeer(`haproxy-nbthread-${nbthread}`, { nbthread }))
      for (const [id] of trialFigures) {
        if (o.stopping()) break
        const scenario = o.scenarios.find((s) => s.id === id)
        if (!scenario) continue
        try {
          const metrics = await scenario.run({ lab: o.lab, sizes: o.sizes, position: 'both', sidecar: true })
          samples.push({ round, nbthread, scenario: id, metrics })
          o.log(
            `trial ${round} haproxy nbthread ${nbthread} ${id.padEnd(8)} ${id === 'wrk' ? `rps=${metrics.rps?.toFixed(0)}` : `MBps=${metrics.MBps?.toFixed(0)}`}`,
          )
        } catch (err) {
          samples.push({ round, nbthread, scenario: id, error: String(/** @type {Error} */ (err).message ?? err) })
          o.log(`trial ${round} haproxy nbthread ${nbthread} ${id.padEnd(8)} FAILED: ${/** @type {Error} */ (err).message}`)
        }
      }
    }
  }
  return { samples, choice: pickNbthread(samples) }
}

/** One line naming the choice and the ratios it rests on. @param {Choice} c @param {string} how */
export function describeChoice(c, how) {
  const parts = Object.entries(c.ratios).map(([k, r]) => `${k} ${r.toFixed(2)}x`)
  return `bench: HAProxy peer: nbthread ${c.nbthread} (${how}${parts.length ? `; nbthread 1 ÷ 2: ${parts.join(', ')}, geometric mean ${c.score.toFixed(2)}x` : ''})`
}
