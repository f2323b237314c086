// @ts-check
// wrk (Debian's package) as the bench's second load generator for keep-alive HTTP at full speed. autocannon
// takes most of a core on a 2-core machine, so through it every peer looks alike; wrk, written in C, leaves
// the cores to the proxies. This module builds wrk's argv and parses the report it prints with --latency.

/**
 * @typedef {{ requests: number, seconds: number, rps: number, latencyMs: { p50: number, p75: number, p90: number, p99: number },
 *   socketErrors: { connect: number, read: number, write: number, timeout: number }, non2xx: number }} WrkResult
 */

/**
 * wrk's argv: one thread, `connections` keep-alive connections for `seconds`, the latency distribution
 * printed; a request unanswered for 2 s counts as a timeout error, so a stuck proxy shows as errors.
 * @param {string} url @param {number} connections @param {number} seconds
 */
export function wrkArgv(url, connections, seconds) {
  return ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '2s', '--latency', url]
}

const timeUnits = /** @type {Record<string, number>} */ ({ us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 })

/** "183.00us" / "1.15ms" / "2.00s" / "1.00m" to milliseconds. @param {string} text */
export function wrkTimeMs(text) {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim())
  if (!m) throw new Error(`wrk: not a time: ${JSON.stringify(text)}`)
  return Number(m[1]) * (timeUnits[m[2] ?? ''] ?? NaN)
}

/**
 * Parses wrk's report (wrk -t1 -cN -dNs --latency URL): the request count and the run's length, requests/s
 * and the latency distribution (50/75/90/99%), socket errors and non-2xx/3xx responses (0 when wrk prints
 * no such line). Throws naming what is missing when the text is not a complete report (wrk could not connect,
 * or was killed).
 * @param {string} text
 * @returns {WrkResult}
 */
export function parseWrk(text) {
  const done = /^\s*(\d+) requests in (\d+(?:\.\d+)?(?:us|ms|s|m|h)),/m.exec(text)
  const rps = /^Requests\/sec:\s+(\d+(?:\.\d+)?)\s*$/m.exec(text)
  if (!done || !rps) throw new Error(`wrk: no complete report (${text.trim().split('\n').slice(-3).join(' | ') || 'no output'})`)
  /** @param {string} p */
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm').exec(text)
    if (!m) throw new Error(`wrk: no ${p}% latency line (was --latency given?)`)
    return wrkTimeMs(m[1] ?? '')
  }
  const errors = /^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/m.exec(text)
  const non2xx = /^\s*Non-2xx or 3xx responses: (\d+)/m.exec(text)
  return {
    requests: Number(done[1]),
    seconds: wrkTimeMs(done[2] ?? '') / 1000,
    rps: Number(rps[1]),
    latencyMs: { p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99') },
    socketErrors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
    non2xx: Number(non2xx?.[1] ?? 0),
  }
}
