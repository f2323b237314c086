// The native engine's sidecar keeps V8's young generation at its size (issue 18: it had grown by 2.3 KB per idle
// connection). Each case measures a fresh process that imports dist/ without the TypeScript loader: loading the
// test grew this process's young generation to its most already, and a worker thread's heap ignores the flag.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const moduleUrl = new URL('../../dist/proxy/young-generation.js', import.meta.url).href

/** A child's new space before and after 100,000 connection-sized objects (40 MB) that stay alive. */
function newSpaceGrowth(keep: boolean): { before: number; after: number; kept: number } {
  const script = `
import { getHeapSpaceStatistics } from 'node:v8'
import { keepYoungGenerationSize } from ${JSON.stringify(moduleUrl)}
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
if (${keep}) keepYoungGenerationSize()
const before = newSpace()
const kept = []
for (let i = 0; i < 100000; i++) kept.push({ id: i, name: 'connection ' + i, data: new Array(40).fill(i) })
console.log(JSON.stringify({ before, after: newSpace(), kept: kept.length }))
`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
  })
  return JSON.parse(out) as { before: number; after: number; kept: number }
}

t.test("control: V8's default grows the young generation when that much survives", async (t) => {
  const r = newSpaceGrowth(false)
  t.equal(r.kept, 100_000)
  t.ok(r.after > 4 * r.before, `new space ${r.before} -> ${r.after} bytes`)
})

t.test('keepYoungGenerationSize: the same survivors leave it within one doubling', async (t) => {
  const r = newSpaceGrowth(true)
  t.equal(r.kept, 100_000)
  t.ok(r.after <= 2 * r.before, `new space ${r.before} -> ${r.after} bytes`)
})
