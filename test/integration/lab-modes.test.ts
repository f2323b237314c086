// The lab in both interception modes, IPv4 and IPv6: who the app sees as its peer tells which path a
// request took (127.0.0.6 / ::6 = REDIRECT's inbound sidecar; the caller's own address = TPROXY).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { execIn, listNetns } from '../../src/lab/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function get(lab: string, from: string, url: string): Promise<Record<string, unknown>> {
  const r = await cli(['lab', 'exec', from, '--lab', lab, '--', 'curl', '-s', '--max-time', '5', url])
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>
  } catch {
    return { code: r.code, stdout: r.stdout, stderr: r.stderr }
  }
}

/** Lines of an access log of a pod. */
async function accessLog(lab: string, pod: string): Promise<string[]> {
  const r = await cli(['lab', 'logs', pod, '--lab', lab])
  return r.stdout.split('\n').filter((l) => l.startsWith('[') && l.includes('"- - -"'))
}

export async function assertRedirectPeers(t: Test, lab: string): Promise<void> {
  t.match(await get(lab, 'productpage', 'http://198.18.0.20:9080/'), { service: 'reviews', peer: '127.0.0.6', local: '198.18.0.20:9080' }, 'IPv4: reviews sees its sidecar (127.0.0.6)')
  t.match(await get(lab, 'productpage', 'http://[2001:2::20]:9080/'), { service: 'reviews', peer: '::6', local: '2001:2::20:9080' }, 'IPv6: reviews sees its sidecar (::6), not 2001:2::10')
  const out = await accessLog(lab, 'productpage')
  t.ok(out.some((l) => / PassthroughCluster \[2001:2::10\]:\d+ \[2001:2::20\]:9080 /.test(l)), "IPv6 went through productpage's outbound sidecar")
}

t.test('REDIRECT lab: IPv6 traffic goes through both sidecars (ip6tables rules in the pods)', rootOnly(), async (t) => {
  const lab = `sltm${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  for (const pod of ['productpage', 'reviews']) {
    const rules = await execIn(`${lab}-${pod}`, ['ip6tables', '-t', 'nat', '-S'])
    t.match(rules.stdout, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/, `${pod}: ip6tables nat has the capture rules`)
  }
  await assertRedirectPeers(t, lab)
  const status = await cli(['lab', 'status', '--lab', lab])
  t.match(status.stdout, /reviews: capture rules[\s\S]*?\n\s+[1-9]\d*\s+ip6 nat\s+-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/, 'status counts the IPv6 packets too')
  await cli(['lab', 'down', '--lab', lab])
  t.same(await listNetns(`${lab}-`), [])
})
