// The two tiers of the suite (issue 21). `npm test` runs the fast tier: every unit, loopback and namespace test
// but those below, with the default relay engine, so a change is checked in minutes. `npm run test:slow` runs
// the rest: the benchmark, demo and decomposition runs, the soak, the Docker lab (its first run builds the
// images), the NAT-clash batches, the relay differential, and the native engine's pass of the files both
// engines run (scripts/relay-engines.mjs). CI runs both; nothing is dropped.
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

export const slowFiles = [
  // bench/run.mjs --quick against every peer (HAProxy, wrk, the floor relay): minutes
  'test/integration/bench.test.ts',
  'test/integration/bench-tproxy.test.ts',
  // the demo end to end: a lab, a trace and two autocannon runs
  'test/integration/demo.test.ts',
  // bench/decompose.mjs and bench/soak.mjs in a lab
  'test/integration/decompose.test.ts',
  'test/integration/soak.test.ts',
  // Docker: images built on the first run, containers for every pod
  'test/integration/lab-docker.test.ts',
  'test/integration/lab-docker-dns.test.ts',
  'test/integration/lab-docker-tproxy.test.ts',
  // 10 batches of 2,000 short and 1,500 held connections under NAT source-port clashes
  'test/faults/loop-guard-nat-clash.test.ts',
  // seeded traffic through both engines, compared connection by connection
  'test/integration/relay-differential.test.ts',
]

/** Every test file under test/, relative to root, sorted. */
export function allFiles(root) {
  const out = []
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else if (e.name.endsWith('.test.ts')) out.push(relative(root, path))
    }
  }
  walk(join(root, 'test'))
  return out.sort()
}

/** The files of a tier: 'fast', 'slow' or 'all'. */
export function tierFiles(root, tier) {
  const all = allFiles(root)
  if (tier === 'all') return all
  const slow = new Set(slowFiles)
  for (const f of slowFiles) if (!all.includes(f)) throw new Error(`scripts/test-tiers.mjs names ${f}, which is not a test file`)
  return all.filter((f) => slow.has(f) === (tier === 'slow'))
}
