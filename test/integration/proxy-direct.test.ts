// Connections from another host addressed to the sidecar's own listener port (198.18.0.2:15001): no
// destination to proxy to, and no loop either. The sidecar closes them, counts them, and says so once per
// burst, without blaming the capture rules or advising a uid. The client pod has no rules and no sidecar
// (the lab's ratings); the server pod runs a sidecar in REDIRECT mode (uid 1337) or TPROXY mode (uid 0).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { execIn } from '../../src/sys/netns.js'
import {
  adminStats,
  podPair,
  repoRoot,
  seedRestoreText,
  spawnIn,
  startSidecar,
  waitForStat,
  type Pod,
  type SidecarProc,
} from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const cli = join(repoRoot, 'dist/cli.js')
const BURST = 10

function tproxyRules(pod: Pod): Promise<void> {
  const args = ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-b', '*', '-d', '15090,15021,15020', '-m', 'TPROXY']
  return new Promise((resolve, reject) => {
    execFile('node', [cli, 'iptables', ...args, '--network-namespace', pod.ns], (err, _out, stderr) =>
      err ? reject(new Error(stderr)) : resolve(),
    )
  })
}

async function burst(t: Test, from: Pod, to: Pod, port: number): Promise<{ closed: number; bytes: number; errors: string[] }> {
  const app = spawnIn(t, from.ns, ['node', join(repoRoot, 'test/helpers/apps/burst.mjs'), to.ip, String(port), String(BURST)], {
    uid: 1000,
    gid: 1000,
  })
  return JSON.parse(await app.waitFor(/"closed"/, 'stdout', 30_000)) as { closed: number; bytes: number; errors: string[] }
}

async function checkDirect(t: Test, client: Pod, server: Pod, sidecar: SidecarProc): Promise<void> {
  const r = await burst(t, client, server, 15001)
  t.equal(r.closed, BURST, `all ${BURST} connections were closed`)
  t.equal(r.bytes, 0, 'none got a byte back')
  // every connection was taken by the inbound capture (15006) and none is open on either listener
  await waitForStat(server, 'listener.[__]_15006.downstream_cx_total', (n) => n >= BURST)
  await waitForStat(server, 'listener.[__]_15006.downstream_cx_active', (n) => n === 0)
  await waitForStat(server, 'listener.[__]_15001.downstream_cx_active', (n) => n === 0)
  const stats = await adminStats(server)
  t.equal(stats['sidecar.direct_to_listener'], BURST, 'sidecar.direct_to_listener counts each one')
  t.equal(stats['listener.[__]_15001.downstream_cx_total'] ?? 0, 0, 'no hop reached the outbound listener')
  t.notOk(
    sidecar.stderr.some((l) => /traffic loop|do not exempt|--uid|--proxy-uid/.test(l)),
    'no traffic-loop error and no uid advice',
  )
  const access = sidecar.accessLines()
  t.equal(access.length, BURST, 'one access-log line each, nothing else opened')
  t.ok(
    access.every((l) => /UH - destination_is_proxy_listener .* BlackHoleCluster - 198\.18\.0\.2:15001 198\.18\.0\.1:\d+ /.test(l)),
    'each closed without an upstream: BlackHoleCluster, to 198.18.0.2:15001, from the client',
  )
  // the burst's rest comes in one summary line at the end of the interval: wait for it, not a fixed time
  const summary = await sidecar.waitFor(/more direct connections/, 'stderr', 15_000)
  const lines = sidecar.stderr.filter((l) => /direct connection/.test(l))
  t.equal(lines.length, 2, 'two log lines for the burst: the first connection, then a summary with the count')
  t.match(lines[0], /"level":40/, 'a warning: nothing in this pod is misconfigured')
  t.match(
    lines[0],
    /direct connection to the proxy's listener port 15001 \(198\.18\.0\.2:15001\) from 198\.18\.0\.1:\d+, another host/,
    'the first line says what happened and from which address',
  )
  t.match(summary, new RegExp(`"count":${BURST - 1}`), 'the summary counts the rest of the burst')
  t.match(summary, new RegExp(`${BURST - 1} more direct connections .* from 198\\.18\\.0\\.1`), 'and names the source')
}

t.test('REDIRECT: ten direct connections from another host to :15001 are one warning and a count, no loop', rootOnly(), async (t) => {
  const { client, server } = await podPair(t, { rules: false })
  await execIn(server.ns, ['iptables-restore', '--noflush'], { input: seedRestoreText() })
  const sidecar = await startSidecar(t, server)
  await checkDirect(t, client, server, sidecar)
})

t.test('TPROXY (uid 0, gid 1337): the same, and no advice to run as uid 1337', rootOnly(), async (t) => {
  const { client, server } = await podPair(t, { rules: false })
  await execIn(server.ns, ['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo'])
  await tproxyRules(server)
  const sidecar = await startSidecar(t, server, ['--interception-mode', 'TPROXY'])
  await checkDirect(t, client, server, sidecar)
})
