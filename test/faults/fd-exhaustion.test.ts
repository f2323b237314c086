// Issue 10, item 9: a sidecar out of file descriptors. Started with RLIMIT_NOFILE 128 and offered more
// connections than that, it stays up, refuses what does not fit (counted as Envoy's
// downstream_global_cx_overflow), logs one warning per burst naming EMFILE and the limit, and serves new
// connections again once the burst's connections are closed.
import t from 'tap'
import { join } from 'node:path'
import { rootOnly } from '../helpers/root.js'
import { adminStats, eventually, podPair, repoRoot, SIDECAR_READY_MS, spawnIn, startSidecar, type Pod } from '../helpers/pods.js'
import { engineFlags, testEngine } from '../helpers/engine.js'
import { event, faultClient, faultServer, fdCount, fdsBackTo, mesh, pidOf, running, startWrappedSidecar, until } from '../helpers/faults.js'

const app = join(repoRoot, 'test/helpers/apps/nat-clash.mjs')
const LIMIT = 128

interface Batch {
  held: number
  alive: number
  failures: Record<string, number>
}

/** HELD concurrent connections to the server pod's 9207 from the client pod, held, then ended. */
async function burst(t: Parameters<typeof spawnIn>[0], client: Pod, server: Pod, held: number): Promise<Batch> {
  const run = spawnIn(t, client.ns, ['node', app, 'client', server.ip, '9208', '0', '9207', String(held), '1'], { uid: 1000, gid: 1000 })
  return JSON.parse(await run.waitFor(/"batch"/, 'stdout', 60_000)) as Batch
}

t.test(`a sidecar with ${LIMIT} file descriptors under more connections than that`, rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const srv = spawnIn(t, server.ns, ['node', app, 'server', '9207', '9208'])
  await srv.waitFor(/"port":9208/)
  const accessLog = join(client.dir, 'access-fd.log')
  const outbound = spawnIn(t, client.ns, [
    'prlimit',
    `--nofile=${LIMIT}:${LIMIT}`,
    'node',
    join(repoRoot, 'dist/cli.js'),
    'proxy',
    ...engineFlags(),
    '--access-log',
    accessLog,
  ])
  await outbound.waitFor(/sidecar ready/, 'stderr', SIDECAR_READY_MS)
  await startSidecar(t, server)
  const warnings = () => outbound.stderr.filter((l) => l.includes('out of file descriptors'))

  let refused = 0
  for (const round of [1, 2]) {
    const b = await burst(t, client, server, 3 * LIMIT)
    const failed = Object.values(b.failures).reduce((a, n) => a + n, 0)
    t.comment(`burst ${round}: ${b.held} connections served, failures ${JSON.stringify(b.failures)}`)
    t.ok(b.held > 0, `burst ${round}: some connections were served (${b.held})`)
    t.ok(failed > 0, `burst ${round}: the ones over the limit were closed (${failed})`)
    t.equal(b.held + failed, 3 * LIMIT, `burst ${round}: every connection was either served or closed`)
    refused += failed
    t.equal(outbound.child.exitCode, null, `burst ${round}: the sidecar is still running`)
    // the burst ends after a quiet second; the next shortage is a new burst with its own warning
    await eventually(() => outbound.stderr.filter((l) => l.includes('file descriptors available again')).length === round, 10_000)
    t.equal(warnings().length, round, `burst ${round}: one warning for the burst`)
  }
  for (const w of warnings()) {
    t.match(w, /"level":40/, 'logged at warn level')
    t.match(
      w,
      new RegExp(`EMFILE: this process's limit is ${LIMIT} \\(RLIMIT_NOFILE soft ${LIMIT}, hard ${LIMIT}\\)`),
      'names EMFILE and the limit',
    )
  }

  const after = await burst(t, client, server, 20)
  t.same(after.failures, {}, 'after the bursts, new connections work again')
  t.equal(after.alive, 20, 'all 20 were served')

  const stats = await adminStats(client)
  const overflow = stats['listener.[__]_15001.downstream_global_cx_overflow']
  t.equal(overflow, refused, 'every closed connection was counted in downstream_global_cx_overflow')
  t.equal(stats['sidecar.fd_exhausted'] ?? 0, 0, 'no socket hit EMFILE: the budget kept the headroom')
  t.equal(outbound.child.exitCode, null, 'the sidecar is still running')
})

// Connections whose bytes wait in the sidecar (each client reads its first bytes and no more): the native
// engine holds a pipe (two descriptors) for each such direction beside the two sockets. Those must fit the
// budget too: a burst on top of them is refused at accept and counted, none fails with EMFILE (reason 24).
t.test(
  'a burst on top of connections with bytes waiting in the relay, 256 file descriptors: refused at accept, none fails with EMFILE',
  rootOnly(),
  async (t) => {
    const m = await mesh(t)
    await faultServer(t, m.server, 9080, 'source', 8_000_000)
    m.outbound.child.kill('SIGKILL')
    await m.outbound.exited
    const limited = await startWrappedSidecar(t, m.client, ['prlimit', '--nofile=256:256'], ['--buffer-limit', '64Ki'])
    const pid = pidOf(limited)
    const baseline = fdCount(pid)
    const first = faultClient(t, m.client, m.server.ip, 9080, 'hold', [40, 'unread'])
    const held = await event<{ held: number; errorCount: number }>(first, 'held', 60_000)
    t.equal(held.held, 40, 'the first 40 connections were served')
    // their bytes fill the path up to the sidecar: its descriptors stop changing (a second unchanged)
    let last = -1
    let steady = 0
    await until(
      'the first connections stall',
      () => {
        const n = fdCount(pid)
        steady = n === last ? steady + 1 : 0
        last = n
        return steady >= 10
      },
      30_000,
      () => last,
    )
    t.comment(`40 stalled connections: ${last} descriptors (${baseline} before)`)
    const burst = faultClient(t, m.client, m.server.ip, 9080, 'hold', [300, 'unread'])
    const b = await event<{ held: number; errorCount: number; errors: string[] }>(burst, 'held', 60_000)
    t.comment(`burst: ${b.held} served, ${b.errorCount} closed (${b.errors.join(', ')}), ${fdCount(pid)} descriptors`)
    t.ok(b.errorCount > 0, `the burst went over the budget (${b.errorCount} of 300 closed)`)
    const stats = await adminStats(m.client)
    t.equal(stats['sidecar.fd_exhausted'] ?? 0, 0, 'no socket hit EMFILE (sidecar.fd_exhausted)')
    if (testEngine() === 'native') t.equal(stats['sidecar.relay_pipes_max'], 16, 'the relay holds 16 pipes at most (a sixteenth of 256)')
    t.equal(
      stats['listener.[__]_15001.downstream_global_cx_overflow'] ?? 0,
      b.errorCount,
      'every closed connection was refused at accept (downstream_global_cx_overflow)',
    )
    for (const c of [first, burst]) {
      c.child.kill('SIGUSR1')
      await event(c, 'released')
    }
    await fdsBackTo(pid, baseline, 30_000)
    t.ok(running(limited), 'the sidecar is still running')
  },
)
