// Issue 10, item 5: an --access-log the sidecar cannot open stops it before any listener binds, with one
// line naming the path, the errno and the uid it was opened as (after the switch to --uid), and exit 2.
import t from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addNetns, deleteNetns, execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { repoRoot, spawnIn } from '../helpers/pods.js'
import { engineFlags } from '../helpers/engine.js'

const cli = join(repoRoot, 'dist/cli.js')
// tap adds its process-info hook to every child's NODE_OPTIONS; in a sidecar that dropped to uid 1337 the
// hook fails at exit writing .tap/ and prints a stack of its own, so the CLI runs without it, as a user runs it.
const node = ['env', '-u', 'NODE_OPTIONS', 'node']

t.test('an unwritable --access-log stops the sidecar before it listens', rootOnly(), async (t) => {
  const ns = `slt-log-open-${process.pid % 100000}`
  const dir = mkdtempSync(join(tmpdir(), 'slt-log-open-'))
  t.teardown(async () => {
    await deleteNetns(ns)
    rmSync(dir, { recursive: true, force: true })
  })
  await addNetns(ns)
  chmodSync(dir, 0o755)
  const closed = join(dir, 'root-only')
  mkdirSync(closed, { mode: 0o755 })
  const open = join(dir, 'open')
  mkdirSync(open)
  chmodSync(open, 0o777)

  const cases = [
    { why: 'directory not writable by uid 1337', path: join(closed, 'access.log'), errno: 'EACCES' },
    { why: 'directory missing', path: join(open, 'missing', 'access.log'), errno: 'ENOENT' },
    { why: 'path is a directory', path: open, errno: 'EISDIR' },
    { why: '/proc/version', path: '/proc/version', errno: 'EACCES' },
  ]
  for (const c of cases) {
    await t.test(c.why, async (t) => {
      const p = spawnIn(t, ns, [...node, cli, 'proxy', ...engineFlags(), '--access-log', c.path])
      const code = await Promise.race([p.exited, new Promise<string>((r) => setTimeout(() => r('still running after 10 s'), 10_000))])
      const listening = (await execIn(ns, ['ss', '-Hltn'])).stdout.trim()
      p.child.kill('SIGKILL')
      t.equal(code, 2, 'exit code 2, as for other configuration errors')
      t.equal(listening, '', 'nothing was listening')
      const all = [...p.stdout, ...p.stderr]
      t.notOk(
        all.some((l) => l.includes('sidecar ready')),
        'never said ready',
      )
      t.notOk(
        all.some((l) => /^\s+at /.test(l)),
        'no stack trace',
      )
      t.equal(p.stderr.length, 1, `one line: ${p.stderr.join(' | ')}`)
      t.match(p.stderr[0], `error: --access-log ${c.path}: `, 'the line names the flag and the path')
      t.match(p.stderr[0], c.errno, `the line names ${c.errno}`)
      t.match(p.stderr[0], /as uid 1337/, 'the line names the uid it was opened as')
    })
  }
})
