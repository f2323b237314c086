// Percentiles from raw samples (microsecond resolution, unlike autocannon's whole-millisecond histogram).
/** @param {number[]} samples @returns {{ p50: number, p90: number, p99: number, max: number }} */
export function percentiles(samples) {
  const s = Float64Array.from(samples).sort()
  const at = (/** @type {number} */ q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0 : 0)
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.length ? s[s.length - 1] ?? 0 : 0 }
}
