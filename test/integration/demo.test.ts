// The demo end to end (npm run demo's second half): the lab up, one request traced, the load run direct and
// through both sidecars, the lab down. In the slow tier: its load runs are the CPU of a small benchmark.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('the demo runs to the end and leaves nothing behind', rootOnly(), async (t) => {
  const lab = `slt-demo-${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const r = await cli(['demo', '--lab', lab, '--duration', '1', '--connections', '2'], 300_000)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /== 1\. lab up: [^\n]*sidecars as uid 1337 \(native relay\)\n/, 'the header names the engine (the default)')
  t.match(r.stdout, /\n +direct +both sidecars \(native relay\)\n/, 'and so does the comparison')
  t.match(r.stdout, /"service":"reviews"|ISTIO_REDIRECT/, 'the traced request reached reviews')
  t.match(r.stdout, /requests\/s\s+\d+\s+\d+/, 'both load runs report requests per second')
  t.match(r.stdout, /errors \/ non-2xx\s+0 \/ 0\s+0 \/ 0/, 'and no errors')
  t.match(r.stdout, /== 4\. lab down\nremoved/)
  t.same(await listNetns(`${lab}-`), [])
})
