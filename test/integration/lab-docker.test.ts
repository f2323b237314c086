// The Docker form of the lab: each pod a holder container whose network namespace the init step, the
// sidecar and the app join, reached by the lab's usual plumbing; a request through both sidecars; nothing left.
import { execFile, spawn } from 'node:child_process'
import { existsSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { listNetns, netnsPath } from '../../src/sys/netns.js'
import { labDir, readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

interface Result {
  code: number
  stdout: string
  stderr: string
}

function sh(program: string, args: string[], timeout = 120_000, env = process.env): Promise<Result> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout, maxBuffer: 16 << 20, cwd: repoRoot, env }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const cli = (args: string[]) => sh('node', [join(repoRoot, 'dist/cli.js'), ...args])

async function containersOf(lab: string): Promise<string[]> {
  const r = await sh('docker', ['ps', '-a', '--filter', `label=sidecar-lab.lab=${lab}`, '--format', '{{.Names}}'])
  return r.stdout.split('\n').filter(Boolean).sort()
}

async function assertGone(t: Test, lab: string) {
  t.same(await containersOf(lab), [], 'no container of the lab is left')
  t.same(await listNetns(`${lab}-`), [], 'no namespace of the lab is left')
  t.notOk(existsSync(labDir(lab)), 'no state is left')
}

/** Builds the images on first use (a few minutes on a bare machine), seconds after that. */
async function images(t: Test): Promise<boolean> {
  const r = await sh('bash', ['scripts/docker-image.sh'], 20 * 60_000)
  t.equal(r.code, 0, r.code === 0 ? 'scripts/docker-image.sh: the images are there' : `scripts/docker-image.sh: ${r.stderr.slice(-2000)}`)
  return r.code === 0
}

t.test('lab up --docker: pods are containers; a request crosses both sidecars; down leaves nothing', rootOnly(), async (t) => {
  if (!(await images(t))) return
  const lab = 'slt-dock'
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--docker', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  t.match(upped.stdout, /productpage\s+slt-dock-productpage\s+198\.18\.0\.10\s+2001:2::10\s+\d+ \(uid 1000\)\s+\d+ \(uid 1337\)/)
  t.match(upped.stdout, /slt-dock-reviews-sidecar\s+[0-9a-f]{12}\s+user 1337:1337\s+Up/, 'status lists the containers with their users')

  const names = await containersOf(lab)
  const expected = [
    'productpage',
    'productpage-app',
    'productpage-sidecar',
    'ratings',
    'ratings-app',
    'reviews',
    'reviews-app',
    'reviews-sidecar',
  ]
  t.same(
    names,
    expected.map((n) => `${lab}-${n}`),
    'docker ps: a holder and an app per pod, a sidecar in productpage and reviews',
  )
  const user = await sh('docker', ['inspect', '--format', '{{.Config.User}}', `${lab}-productpage-sidecar`, `${lab}-productpage-app`])
  t.same(user.stdout.trim().split('\n'), ['1337:1337', '1000:1000'], 'the sidecar container runs as 1337, the app as 1000')

  const holderPid = (await sh('docker', ['inspect', '--format', '{{.State.Pid}}', `${lab}-reviews`])).stdout.trim()
  const holderNs = readlinkSync(`/proc/${holderPid}/ns/net`)
  t.equal(holderNs, `net:[${statSync(netnsPath(`${lab}-reviews`)).ino}]`, "the lab's reviews namespace is the holder container's")
  const sidecarPid = readState(lab)!.pods.reviews!.pids.sidecar!
  t.equal(readlinkSync(`/proc/${sidecarPid}/ns/net`), holderNs, 'and the sidecar container shares it')

  const r = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', '--max-time', '10', 'http://198.18.0.20:9080/'])
  t.equal(r.code, 0, r.stderr)
  t.match(
    JSON.parse(r.stdout),
    { service: 'reviews', peer: '127.0.0.6', local: '198.18.0.20:9080' },
    "reviews answers, and sees its inbound sidecar's 127.0.0.6",
  )
  const logs = await cli(['lab', 'logs', 'reviews', '--lab', lab])
  t.match(
    logs.stdout,
    /InboundPassthroughClusterIpv4 127\.0\.0\.6:\d+ 198\.18\.0\.20:9080 198\.18\.0\.10:\d+/,
    "the sidecar container's access log, in the bind-mounted pod folder",
  )

  const off = await cli(['lab', 'rules', 'off', '--lab', lab])
  t.match(off.stdout, /productpage: cleaned up\nreviews: cleaned up/, 'rules off runs the init container with --cleanup-only')
  const direct = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', '--max-time', '10', 'http://198.18.0.20:9080/'])
  t.match(JSON.parse(direct.stdout), { service: 'reviews', peer: '198.18.0.10' }, 'without the rules reviews sees the caller')

  const downed = await cli(['lab', 'down', '--lab', lab])
  t.equal(downed.code, 0, downed.stderr)
  t.match(downed.stdout, `container ${lab}-reviews-sidecar`)
  await assertGone(t, lab)
})

t.test('lab down removes the containers of an up --docker that was killed half way', rootOnly(), async (t) => {
  if (!(await images(t))) return
  const lab = 'slt-dock-kill'
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const child = spawn('node', [join(repoRoot, 'dist/cli.js'), 'lab', 'up', '--docker', '--lab', lab], { stdio: 'ignore' })
  const end = Date.now() + 60_000
  while (!readState(lab)?.pods.productpage?.pids.sidecar && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  t.ok((await containersOf(lab)).length >= 4, 'the killed up had started containers')
  const downed = await cli(['lab', 'down', '--lab', lab])
  t.equal(downed.code, 0, downed.stderr)
  await assertGone(t, lab)
})

t.test('lab up --docker without the image names the fix and leaves nothing', rootOnly(), async (t) => {
  const lab = 'slt-dock-noimg'
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const env = { ...process.env, SIDECAR_LAB_IMAGE: 'sidecar-lab-missing:none' }
  const r = await sh('node', [join(repoRoot, 'dist/cli.js'), 'lab', 'up', '--docker', '--lab', lab], 60_000, env)
  t.equal(r.code, 2)
  t.match(r.stderr, "image sidecar-lab-missing:none is missing: run 'bash scripts/docker-image.sh'")
  await assertGone(t, lab)
})
