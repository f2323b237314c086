// The lab as a user drives it: up, a request through both sidecars, up again, down, a crash half way.
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { alive } from '../../src/sys/exec.js'
import { labDir, readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, cwd: repoRoot, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function assertGone(t: Test, lab: string, pids: number[]) {
  t.same(await listNetns(`${lab}-`), [], 'no namespace of the lab is left')
  t.same(pids.filter(alive), [], 'no process of the lab is left')
  t.notOk(existsSync(labDir(lab)), 'no state is left')
  const links = await new Promise<string>((r) => execFile('ip', ['-o', 'link'], (_e, out) => r(out)))
  // Links of live processes belong to other tests building their pods right now.
  const orphans = [...links.matchAll(/(slv(\d+)[ab]\d+)/g)].filter((m) => !alive(Number(m[2]))).map((m) => m[1])
  t.same(orphans, [], 'no half-made veth is left in the root namespace')
}

function pidsOf(lab: string): number[] {
  const state = readState(lab)
  return Object.values(state?.pods ?? {})
    .flatMap((p) => [p.pids.app, p.pids.sidecar])
    .filter((p): p is number => !!p)
}

t.test('lab up builds the scene; a request crosses both sidecars; up again is a no-op; down leaves nothing', rootOnly(), async (t) => {
  const lab = `slt-lab-${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  t.match(upped.stdout, /productpage\s+slt-lab-\d+-productpage\s+198\.18\.0\.10\s+2001:2::10\s+\d+ \(uid 1000\)\s+\d+ \(uid 1337\)/)
  t.match(upped.stdout, /ratings\s+\S+\s+198\.18\.0\.30\s+\S+\s+\d+ \(uid 1000\)\s+none/)
  const pids = pidsOf(lab)
  t.equal(pids.length, 5, 'three apps and two sidecars')

  const direct = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', 'http://198.18.0.20:9080/'])
  t.equal(direct.code, 0)
  t.match(
    JSON.parse(direct.stdout),
    { service: 'reviews', peer: '127.0.0.6', local: '198.18.0.20:9080' },
    'reviews answers, and sees the inbound sidecar (127.0.0.6)',
  )
  const chained = await cli(['lab', 'exec', 'ratings', '--lab', lab, '--', 'curl', '-s', 'http://198.18.0.10:9080/'])
  t.match(
    JSON.parse(chained.stdout),
    { service: 'productpage', peer: '127.0.0.6', upstream: { service: 'reviews', peer: '127.0.0.6' } },
    'ratings (no sidecar) -> productpage -> reviews; each app sees 127.0.0.6, not the caller (istio#32802)',
  )
  t.match(
    JSON.parse(chained.stdout),
    { upstream: { upstream: { service: 'ratings', peer: '198.18.0.20' } } },
    "reviews calls ratings (as Bookinfo does); ratings has no sidecar and sees reviews' own address",
  )

  const status = await cli(['lab', 'status', '--lab', lab])
  t.match(
    status.stdout,
    /reviews: capture rules[\s\S]*?\n\s+[1-9]\d*\s+nat\s+-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/,
    'status counts the packets the inbound redirect caught',
  )
  t.match(
    status.stdout,
    /productpage: capture rules[\s\S]*?\n\s+[1-9]\d*\s+nat\s+-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/,
    'and the outbound redirect',
  )

  const again = await cli(['lab', 'up', '--lab', lab])
  t.equal(again.code, 0)
  t.match(again.stdout, `lab ${lab} is already up`)
  t.same(pidsOf(lab), pids, 'the same processes are still serving')
  const otherForm = await cli(['lab', 'up', '--lab', lab, '--compat', 'legacy'])
  t.equal(otherForm.code, 2, 'up in another form while the lab is up is refused')
  t.match(
    otherForm.stderr,
    `lab ${lab} is up as network namespaces with the injector's rules in REDIRECT mode; this 'lab up' asks for network namespaces with the legacy (Istio 1.10 layout) rules in REDIRECT mode: run 'node dist/cli.js lab down --lab ${lab}' first`,
  )
  t.same(pidsOf(lab), pids, 'and the lab was left as it was')

  const logs = await cli(['lab', 'logs', 'reviews', '--lab', lab])
  t.match(logs.stdout, /InboundPassthroughClusterIpv4 127\.0\.0\.6:\d+ 198\.18\.0\.20:9080 198\.18\.0\.10:\d+/)

  const downed = await cli(['lab', 'down', '--lab', lab])
  t.equal(downed.code, 0)
  t.match(downed.stdout, `lab ${lab} is down: removed`)
  await assertGone(t, lab, pids)
  const twice = await cli(['lab', 'down', '--lab', lab])
  t.match(twice.stdout, 'nothing to remove', 'down again is a no-op')
})

t.test('lab down cleans up after an up that was killed half way', rootOnly(), async (t) => {
  const lab = `slt-kill-${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const child = spawn('node', [join(repoRoot, 'dist/cli.js'), 'lab', 'up', '--lab', lab], { stdio: 'ignore' })
  // Kill it once the first sidecar process exists: namespaces, links and rules are in place by then.
  const end = Date.now() + 30_000
  while (!readState(lab)?.pods.productpage?.pids.sidecar && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  const pids = pidsOf(lab)
  t.ok(pids.length >= 1, 'the killed up had started processes')
  t.ok((await listNetns(`${lab}-`)).length >= 2, 'and namespaces')
  const downed = await cli(['lab', 'down', '--lab', lab])
  t.equal(downed.code, 0)
  await assertGone(t, lab, pids)
})

t.test("the seed listing's legacy layout serves the request too", rootOnly(), async (t) => {
  const lab = `slt-leg-${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  // --verbose: every rule, also those that caught nothing yet; a long rule wraps, so its spacing is flattened
  const upped = await cli(['lab', 'up', '--lab', lab, '--compat', 'legacy', '--verbose'])
  t.equal(upped.code, 0, upped.stderr)
  t.match(
    upped.stdout.replace(/\n +/g, ' '),
    /-A OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053/,
    'the DNS capture of the seed listing is there',
  )
  const r = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', 'http://198.18.0.20:9080/'])
  t.match(JSON.parse(r.stdout), { service: 'reviews', peer: '127.0.0.6' })
})

t.test('lab errors name the problem', rootOnly(), async (t) => {
  const lab = `slt-none-${process.pid % 10000}`
  const notUp = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'true'])
  t.equal(notUp.code, 2)
  t.match(notUp.stderr, `lab ${lab} is not up`)
  const badName = await cli(['lab', 'up', '--lab', 'Bad_Name'])
  t.equal(badName.code, 2)
  t.match(badName.stderr, 'lab name "Bad_Name" must be')
  const sub = await cli(['lab', 'frob'])
  t.equal(sub.code, 2)
  t.match(sub.stderr, "unknown lab subcommand 'frob'")
})
