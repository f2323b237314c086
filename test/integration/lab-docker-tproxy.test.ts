// lab up --docker --mode TPROXY: the init container programs -m TPROXY (mangle rules and routes) in each
// pod's namespace, the sidecar container runs as 0:1337 with NET_ADMIN only (and SETGID), and reviews sees
// productpage's own address, IPv4 and IPv6; down leaves nothing.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { execIn, listNetns } from '../../src/sys/netns.js'
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

t.test('lab up --docker --mode TPROXY: the apps see their callers; down leaves nothing', rootOnly(), async (t) => {
  const images = await sh('bash', ['scripts/docker-image.sh'], 20 * 60_000)
  t.equal(images.code, 0, images.code === 0 ? 'the images are there' : images.stderr.slice(-2000))
  if (images.code !== 0) return
  const lab = `sltpd${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--docker', '--mode', 'TPROXY', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  t.match(upped.stdout, /mode: TPROXY/)
  t.match(upped.stdout, new RegExp(`${lab}-reviews-sidecar\\s+[0-9a-f]{12}\\s+user 0:1337\\s+Up`), 'the sidecar container runs as 0:1337')
  const caps = await sh('docker', ['inspect', '--format', '{{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}}', `${lab}-reviews-sidecar`])
  t.match(caps.stdout, /ALL.*NET_ADMIN/, 'with every capability dropped but NET_ADMIN (and SETGID)')
  t.match(
    (await execIn(`${lab}-reviews`, ['ip', 'rule', 'show'])).stdout,
    /fwmark 0x539 lookup 133/,
    "the init container set up TPROXY's routing",
  )

  const v4 = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', '--max-time', '10', 'http://198.18.0.20:9080/'])
  t.match(JSON.parse(v4.stdout), { service: 'reviews', peer: '198.18.0.10', local: '198.18.0.20:9080' }, 'reviews sees productpage (IPv4)')
  const v6 = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', '--max-time', '10', 'http://[2001:2::20]:9080/'])
  t.match(JSON.parse(v6.stdout), { service: 'reviews', peer: '2001:2::10' }, 'and IPv6')
  const logs = await cli(['lab', 'logs', 'reviews', '--lab', lab])
  t.match(
    logs.stdout,
    /InboundPassthroughClusterIpv4 198\.18\.0\.10:\d+ 198\.18\.0\.20:9080 198\.18\.0\.10:\d+/,
    "through reviews' sidecar container",
  )

  const downed = await cli(['lab', 'down', '--lab', lab])
  t.equal(downed.code, 0, downed.stderr)
  const left = await sh('docker', ['ps', '-a', '--filter', `label=sidecar-lab.lab=${lab}`, '--format', '{{.Names}}'])
  t.equal(left.stdout.trim(), '', 'no container is left')
  t.same(await listNetns(`${lab}-`), [], 'no namespace is left')
})
