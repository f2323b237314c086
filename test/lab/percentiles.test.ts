// Percentiles at the samples' own resolution: sub-millisecond latencies must not round to whole milliseconds.
import t from 'tap'
import { percentiles } from '../../src/lab/percentiles.js'

t.test('nearest-rank percentiles, mean and max of raw samples', async (t) => {
  const samples = Array.from({ length: 100 }, (_, i) => (100 - i) / 1000) // 0.001 .. 0.100 ms, unsorted
  const p = percentiles(samples)
  t.equal(p.p50, 0.051)
  t.equal(p.p90, 0.091)
  t.equal(p.p99, 0.1)
  t.equal(p.max, 0.1)
  t.ok(Math.abs(p.mean - 0.0505) < 1e-12, `mean ${p.mean}`)
})

t.test('no samples give zeros, not NaN', async (t) => {
  t.same(percentiles([]), { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 })
})
