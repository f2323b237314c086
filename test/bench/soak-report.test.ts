// The soak's verdict on made-up runs: each rule fails the run when, and only when, its condition is met.
import t from 'tap'

interface Check {
  name: string
  ok: boolean
  detail: string
}
const report = (await import('../../bench/soak-report.mjs' as string)) as {
  checks(r: unknown): Check[]
}

/** A clean 30-sample run: flat RSS and descriptors, no errors. */
function run(
  over: { rss?: (i: number) => number; fds?: (i: number) => number; errors?: unknown[]; mismatches?: number; endFds?: number } = {},
) {
  const sample = (i: number) => ({ rssMiB: over.rss?.(i) ?? 100, fds: over.fds?.(i) ?? 400, loopMaxMs: 5, loopP99Ms: 2, loopPeakMs: 9 })
  return {
    samples: Array.from({ length: 30 }, (_, i) => ({ t: i * 5, outbound: sample(i), inbound: sample(i) })),
    kills: [{ killedAt: 50, readyAt: 52 }],
    errors: over.errors ?? [],
    cannon: { requests: 1000, errors: 0, non2xx: 0 },
    client: {
      short: { ok: 10, errors: 0 },
      bulk: { streams: 3, bytes: 3e8, mismatches: over.mismatches ?? 0, errors: 0 },
      idle: { wanted: 200, opened: 200, closedEarly: 0, openAtEnd: 200 },
      peer: { ok: 10, errors: 0 },
    },
    baselineFds: { productpage: 25, reviews: 25 },
    endFds: { productpage: over.endFds ?? 25, reviews: 25 },
    problems: [],
  }
}
const failed = (r: unknown) =>
  report
    .checks(r)
    .filter((c) => !c.ok)
    .map((c) => c.name)

t.test('a clean run passes every check', async (t) => {
  t.same(failed(run()), [])
})

t.test('bytes that differ fail the run', async (t) => {
  t.same(failed(run({ mismatches: 1 })), ['bytes'])
})

t.test('a peer failure while the soak had the peer killed is caused; the same failure later is not', async (t) => {
  t.same(failed(run({ errors: [{ workload: 'peer', code: 'ECONNRESET', at: 51 }] })), [])
  t.same(failed(run({ errors: [{ workload: 'peer', code: 'ECONNRESET', at: 60 }] })), ['errors'])
  t.same(
    failed(run({ errors: [{ workload: 'short', code: 'ECONNRESET', at: 51 }] })),
    ['errors'],
    'a kill of the peer excuses no other workload',
  )
})

t.test('RSS or descriptors rising after warm-up fail; a spike in one sample does not', async (t) => {
  t.same(failed(run({ rss: (i) => 100 + i * 2 })), ['rss outbound', 'rss inbound'])
  t.same(failed(run({ fds: (i) => 400 + i * 3 })), ['fds outbound', 'fds inbound'])
  t.same(failed(run({ rss: (i) => (i === 28 ? 400 : 100), fds: (i) => (i === 25 ? 900 : 400) })), [])
  t.same(failed(run({ rss: (i) => (i < 10 ? 50 + i * 5 : 100) })), [], 'growth inside the warm-up third is allowed')
})

t.test('descriptors not back to the baseline after the load fail', async (t) => {
  t.same(failed(run({ endFds: 40 })), ['fds back outbound'])
})
