// Issue 10, item 2: the access log on a full filesystem. Envoy keeps proxying when its access log cannot
// be written and counts the loss; so must the sidecar: drop the lines, count them, warn once, never block
// proxying or shutdown on the log, and write again once space returns.
import t from 'tap'
import { readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { rootOnly } from '../helpers/root.js'
import { fill, smallTmpfs } from '../helpers/tmpfs.js'
import {
  adminStats,
  eventually,
  podPair,
  repoRoot,
  SIDECAR_READY_MS,
  spawnIn,
  startServerApp,
  startSidecar,
  type Pod,
  type Proc,
} from '../helpers/pods.js'
import { engineFlags } from '../helpers/engine.js'

const cli = join(repoRoot, 'dist/cli.js')
// tap adds its process-info hook to every child's NODE_OPTIONS; in a sidecar that dropped to uid 1337 the
// hook fails at exit writing .tap/ and prints a stack of its own, so the CLI runs without it, as a user runs it.
const node = ['env', '-u', 'NODE_OPTIONS', 'node']
const portShare = join(repoRoot, 'test/helpers/apps/port-share.mjs')

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Polls the admin's /stats until pick() says yes (5 s at most), then returns the last answer. */
async function statsWhen(pod: Pod, pick: (s: Record<string, number>) => boolean): Promise<Record<string, number>> {
  const end = Date.now() + 5000
  for (;;) {
    const s = await adminStats(pod)
    if (pick(s) || Date.now() > end) return s
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** N short connections from the client pod (as app uid 1000), one byte each echoed back. */
async function connections(t: Teardown, client: Pod, server: Pod, n: number): Promise<{ short: number; errors: string[] }> {
  const app = spawnIn(t, client.ns, ['node', portShare, server.ip, '9080', '9080', '0', String(n)], { uid: 1000, gid: 1000 })
  const line = await app.waitFor(/"short"/, 'stdout', 30_000)
  app.child.kill('SIGKILL')
  return JSON.parse(line) as { short: number; errors: string[] }
}

function accessLogWarnings(p: Proc): string[] {
  return p.stderr.filter((l) => l.includes('"level":40') && /access log/.test(l))
}

t.test(
  'a full disk: the sidecar keeps proxying, counts the dropped lines, warns once, stops on SIGTERM, and writes again when space returns',
  rootOnly(),
  async (t) => {
    const { client, server } = await podPair(t)
    const disk = await smallTmpfs(t, `${process.pid}-full`)
    await startServerApp(t, server, 9080)
    await startSidecar(t, server)
    const accessLog = join(disk, 'access.log')
    const sidecar = spawnIn(t, client.ns, [...node, cli, 'proxy', ...engineFlags(), '--access-log', accessLog, '--drain-duration', '1s'])
    await sidecar.waitFor(/sidecar ready/, 'stderr', SIDECAR_READY_MS)

    // Phase 1: no space at all. 150 connections' lines (about 40 KB) cannot be written.
    let filler = fill(disk)
    const full = await connections(t, client, server, 150)
    t.equal(full.short, 150, 'all 150 connections got their byte echoed through the sidecar')
    t.same(full.errors, [], 'no connection failed')
    const stats = await statsWhen(client, (s) => (s['access_logs.file.logs_dropped'] ?? 0) >= 150)
    t.ok(stats['access_logs.file.logs_dropped']! > 0, `dropped lines are counted (${stats['access_logs.file.logs_dropped']})`)
    t.ok(stats['filesystem.write_failed']! > 0, `failed writes are counted under Envoy's name (${stats['filesystem.write_failed']})`)
    const warnings = accessLogWarnings(sidecar)
    t.equal(warnings.length, 1, 'one warning line for the whole outage')
    t.match(warnings[0], /ENOSPC/, 'the warning names the errno')
    t.match(warnings[0], accessLog, 'the warning names the file')

    // Phase 2: space returns; the next connections' lines are written whole.
    unlinkSync(filler)
    const back = await connections(t, client, server, 5)
    t.equal(back.short, 5, 'proxied after space returned')
    const lines = await eventually(() => {
      const l = readFileSync(accessLog, 'utf8')
        .split('\n')
        .filter((x) => x.includes('PassthroughCluster'))
      return l.length >= 5 && l
    })
    for (const l of lines.slice(-5))
      t.match(l, /^\[[^\]]+\] "- - -" 0 - - - "-" 1 1 \d+ .* PassthroughCluster .* - -$/, 'a whole line after recovery')
    const after = await statsWhen(client, (s) => (s['access_logs.file.logs_written'] ?? 0) >= 5)
    t.ok(after['access_logs.file.logs_written']! >= 5, 'written lines are counted')

    // Phase 3: full again while the log's last page still has room: some lines fit, one may be cut short by
    // the disk (a short write), the rest are dropped.
    filler = fill(disk, 'filler2')
    const again = await connections(t, client, server, 40)
    t.equal(again.short, 40, 'connections still proxied on a full disk')
    await statsWhen(client, (s) => s['access_logs.file.logs_written']! + s['access_logs.file.logs_dropped']! >= 195)

    // Phase 4: space returns; a line cut short stays cut but never swallows the next one.
    const before = (await adminStats(client))['access_logs.file.logs_written']!
    unlinkSync(filler)
    await connections(t, client, server, 5)
    await statsWhen(client, (s) => s['access_logs.file.logs_written']! >= before + 5)
    const text = readFileSync(accessLog, 'utf8')
    const all = text.split('\n').filter(Boolean)
    const whole = /^\[[^\]]+\] "- - -" 0 - - - "-" 1 1 \d+ - "-" "-" "-" "-" "[\d.:]+" PassthroughCluster [\d.:]+ [\d.:]+ [\d.:]+ - -$/
    const cut = all.filter((l) => !whole.test(l))
    t.comment(`${all.length} lines in the file, ${cut.length} cut short by the full disk`)
    t.ok(
      cut.every((l) => (l.match(/"- - -"/g) ?? []).length <= 1 && whole.test(l) === false && l.startsWith('[')),
      'a cut line holds at most the start of one entry: the next line starts on a line of its own',
    )
    t.same(
      all.slice(-5).filter((l) => !whole.test(l)),
      [],
      'the lines after the outage are whole',
    )

    // Phase 5: full again, then SIGTERM: the drain must not wait on the log.
    fill(disk, 'filler3')
    await connections(t, client, server, 5)
    const stopAt = Date.now()
    sidecar.child.kill('SIGTERM')
    const code = await Promise.race([sidecar.exited, new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000))])
    t.equal(code, 0, 'SIGTERM ends the sidecar with exit 0 while the disk is full')
    t.comment(`exit ${Date.now() - stopAt} ms after SIGTERM (--drain-duration 1s)`)
  },
)
