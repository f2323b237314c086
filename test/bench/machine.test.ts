// The memory scenario's largest count of idle connections fits what a sidecar's descriptor budget leaves for
// connections: at this machine's hard limit of 20,000 the bench asked for 9,000 and the native sidecar, whose
// budget held 6,486 (its warning said "max 12973" descriptors), closed the rest at accept, so the run failed.
import { spawnSync } from 'node:child_process'
import t from 'tap'

const { maxIdleFor } = (await import('../../bench/machine.mjs' as string)) as { maxIdleFor(limit: number): number }
const budget = new URL('../../dist/proxy/fd-budget.js', import.meta.url).pathname

/** The real budget of a native-relay sidecar with the DNS proxy's reservation, in a process with this limit. */
function sidecarBudget(limit: number): number {
  const script =
    `import { FdBudget } from ${JSON.stringify(budget)}\n` +
    'const log = { warn() {}, info() {}, debug() {}, error() {} }\n' +
    'const b = new FdBudget(log, { relayPipes: true }); b.measure(); b.reserve(4096); console.log(b.max)'
  const r = spawnSync('prlimit', [`--nofile=${limit}:${limit}`, process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`the budget process failed: ${r.stderr}`)
  return Number(r.stdout.trim())
}

t.test('maxIdleFor: the idle connections fit the budget a native-relay sidecar computes', async (t) => {
  t.equal(maxIdleFor(20_000), 6000, 'a limit of 20,000: 6,000, not 9,000')
  t.equal(maxIdleFor(1_048_576), 10_000, 'a large limit: capped at 10,000')
  // (root here cannot raise the hard limit above 20,000)
  for (const limit of [4096, 12_000, 20_000]) {
    const max = sidecarBudget(limit)
    t.ok(maxIdleFor(limit) <= max / 2, `limit ${limit}: ${maxIdleFor(limit)} idle connections, two descriptors each, within ${max}`)
  }
})
