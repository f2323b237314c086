// Percentiles from raw samples, at the samples' own resolution (autocannon's histogram has whole milliseconds,
// too coarse for a sub-millisecond hop).
export interface Percentiles {
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

export function percentiles(samples: readonly number[]): Percentiles {
  const s = Float64Array.from(samples).sort()
  const at = (q: number) => (s.length ? (s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0) : 0)
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0
  return { mean, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.length ? (s[s.length - 1] ?? 0) : 0 }
}
