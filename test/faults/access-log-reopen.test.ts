// Issue 10, item 4: SIGHUP reopens the access log; when the reopen fails (the log was moved away and the
// directory is no longer writable) the sidecar keeps running on the old file, counts reopen_failed and logs
// one error, and open connections are untouched.
import t from 'tap'
import { chmodSync, mkdirSync, readFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { rootOnly } from '../helpers/root.js'
import { adminStats, podPair, repoRoot, SIDECAR_READY_MS, runClient, spawnIn, startServerApp, startSidecar } from '../helpers/pods.js'
import { engineFlags } from '../helpers/engine.js'

const cli = join(repoRoot, 'dist/cli.js')
// tap adds its process-info hook to every child's NODE_OPTIONS; in a sidecar that dropped to uid 1337 the
// hook fails at exit writing .tap/ and prints a stack of its own, so the CLI runs without it, as a user runs it.
const node = ['env', '-u', 'NODE_OPTIONS', 'node']

t.test(
  'a failed reopen on SIGHUP: the sidecar stays up, the open connection survives, one error, reopen_failed counted',
  rootOnly(),
  async (t) => {
    const { client, server } = await podPair(t)
    await startServerApp(t, server, 9080)
    await startSidecar(t, server)
    const dir = join(client.dir, 'logs')
    mkdirSync(dir, { mode: 0o777 })
    chmodSync(dir, 0o777)
    const accessLog = join(dir, 'access.log')
    const sidecar = spawnIn(t, client.ns, [...node, cli, 'proxy', ...engineFlags(), '--access-log', accessLog])
    await sidecar.waitFor(/sidecar ready/, 'stderr', SIDECAR_READY_MS)

    const held = spawnIn(t, client.ns, ['node', join(repoRoot, 'test/helpers/apps/hold-echo.mjs'), server.ip, '9080'], {
      uid: 1000,
      gid: 1000,
    })
    await held.waitFor(/"held":true/)

    renameSync(accessLog, `${accessLog}.1`)
    chmodSync(dir, 0o555)
    sidecar.child.kill('SIGHUP')
    const error = await sidecar.waitFor(/reopen/, 'stderr')
    t.match(error, /"level":50/, 'logged at error level')
    t.match(error, accessLog, 'the error names the file')
    t.match(error, /EACCES/, 'the error names the errno')
    t.match(error, /uid 1337/, 'the error names the uid it tried as')

    held.child.kill('SIGUSR2')
    await held.waitFor(/"second":"b"/)
    t.pass('the connection open across the failed reopen still carries bytes both ways')
    const r = await runClient(t, client, server.ip, 9080, 333)
    t.equal(r.received, 333, 'a new connection is proxied after the failed reopen')
    t.equal(sidecar.child.exitCode, null, 'the sidecar is still running')

    const stats = await adminStats(client)
    t.equal(stats['filesystem.reopen_failed'], 1, 'filesystem.reopen_failed counts the failed reopen')
    t.equal(sidecar.stderr.filter((l) => l.includes('"level":50')).length, 1, 'exactly one error line')
    const deadline = Date.now() + 5000
    while (!readFileSync(`${accessLog}.1`, 'utf8').includes(' 333 333 ') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100))
    t.match(readFileSync(`${accessLog}.1`, 'utf8'), ' 333 333 ', 'the line went to the old file, which the sidecar kept')
    chmodSync(dir, 0o777)
  },
)
