// DNS in the Docker form of the lab: the containers get the pod's resolv.conf, names resolve through the
// sidecar container's DNS proxy (table and forwarded, UDP and TCP), and down leaves nothing.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function sh(program: string, args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout, maxBuffer: 16 << 20, cwd: repoRoot }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const cli = (args: string[]) => sh('node', [join(repoRoot, 'dist/cli.js'), ...args])

t.test('lab up --docker --compat legacy: names through the sidecar container; down leaves nothing', rootOnly(), async (t) => {
  const built = await sh('bash', ['scripts/docker-image.sh'], 20 * 60_000)
  t.equal(built.code, 0, 'scripts/docker-image.sh: the images are there', { stderr: built.stderr.slice(-2000) })
  if (built.code !== 0) return
  const lab = 'slt-dockdns'
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const up = await cli(['lab', 'up', '--docker', '--compat', 'legacy', '--lab', lab])
  t.equal(up.code, 0, up.stderr)

  const resolv = await sh('docker', ['exec', `${lab}-productpage-app`, 'cat', '/etc/resolv.conf'])
  t.match(
    resolv.stdout,
    /nameserver 198\.18\.0\.53\nsearch default\.svc\.cluster\.local svc\.cluster\.local cluster\.local\noptions ndots:5/,
    "the app container has the pod's resolv.conf",
  )
  const inPod = (cmd: string[]) => cli(['lab', 'exec', 'productpage', '--lab', lab, '--', ...cmd])
  t.match((await inPod(['getent', 'hosts', 'reviews'])).stdout, /^198\.18\.0\.20\s+reviews\.default\.svc\.cluster\.local/)
  t.match(
    (await inPod(['dig', '+noall', '+answer', 'reviews.default.svc.cluster.local'])).stdout,
    /\s30\s+IN\s+A\s+198\.18\.0\.20/,
    "the sidecar container's table (TTL 30)",
  )
  t.match(
    (await inPod(['dig', '+tcp', '+noall', '+answer', 'db.lab.test'])).stdout,
    /\s10\s+IN\s+A\s+198\.18\.0\.30/,
    'forwarded to the lab DNS server (TTL 10)',
  )
  const stats = await inPod(['curl', '-s', '127.0.0.1:15000/stats?filter=^dns\\.(forwarded|answered_from_table)$'])
  t.match(stats.stdout, /dns\.answered_from_table: [1-9]/)
  t.match(stats.stdout, /dns\.forwarded: [1-9]/)
  const app = await cli(['lab', 'exec', 'ratings', '--lab', lab, '--', 'curl', '-s', 'http://productpage:9080/'])
  t.match(JSON.parse(app.stdout), { service: 'productpage', upstream: { service: 'reviews' } }, 'the app container calls reviews by name')

  t.equal((await cli(['lab', 'down', '--lab', lab])).code, 0)
  const left = await sh('docker', ['ps', '-a', '--filter', `label=sidecar-lab.lab=${lab}`, '--format', '{{.Names}}'])
  t.equal(left.stdout.trim(), '', 'no container left')
  t.same(await listNetns(`${lab}-`), [], 'no namespace left')
  t.notOk(existsSync(`/etc/netns/${lab}-productpage`), 'no resolv.conf left')
})
