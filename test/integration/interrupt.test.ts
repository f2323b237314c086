// Issue 24: `npm test` leaves the machine as it found it, also when it is interrupted. Each case starts
// `npm test` on a subset in its own process group, as a user's terminal does, interrupts it while a namespace
// test is under way (its namespaces hold processes), and then looks for anything of that run: a namespace from
// its ledger, a process carrying its folder in SIDECAR_LAB_RUN, a mount under the folder, the folder itself,
// a lab's state.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rootOnly } from '../helpers/root.js'
import { repoRoot } from '../helpers/pods.js'
import { run } from '../../src/sys/exec.js'
import { readLedger, type LedgerEntry } from '../../src/sys/ledger.js'
import { netnsExists } from '../../src/sys/netns.js'

interface Interrupted {
  code: number | null
  output: string
  runDir: string
  ledger: LedgerEntry[]
  mountsSeen: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((p) => p.startsWith(dir + '/'))
}

function processesOf(dir: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    try {
      const runs = readFileSync(`/proc/${entry}/environ`, 'latin1')
        .split('\0')
        .find((v) => v.startsWith('SIDECAR_LAB_RUN='))
      if (runs?.slice('SIDECAR_LAB_RUN='.length).split(':').includes(dir)) found.push(Number(entry))
    } catch {
      // gone or not a process
    }
  }
  return found
}

/** Whether a namespace of the run holds a process (a sidecar, an app, dnsmasq): a test is under way. */
async function busy(ledger: LedgerEntry[]): Promise<boolean> {
  for (const e of ledger.filter((e) => e.kind === 'netns' && netnsExists(e.name))) {
    const pids = await run('ip', ['netns', 'pids', e.name], { allowFailure: true })
    if (pids.stdout.trim()) return true
  }
  return false
}

/**
 * npm test on `files` in a process group of its own; once a namespace of the run holds a process (and, with
 * needMount, a mount is made under the run's folder), `signal` goes to the group (a terminal's Ctrl-C) or to
 * npm alone (a time limit's SIGTERM).
 */
async function interruptRun(
  t: Test,
  files: string[],
  signal: NodeJS.Signals,
  target: 'group' | 'npm',
  needMount = false,
): Promise<Interrupted> {
  const base = mkdtempSync(join(tmpdir(), 'slt-interrupt-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: base }
  delete env.SIDECAR_LAB_TEST_TOTALS
  const npm = spawn('npm', ['test', '--', '--no-setup', ...files], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  npm.stdout.on('data', (d: Buffer) => (output += d.toString()))
  npm.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const exited = new Promise<number | null>((res) => npm.once('exit', (code) => res(code)))
  t.teardown(() => {
    try {
      process.kill(-npm.pid!, 'SIGKILL')
    } catch {
      // ended
    }
  })

  let runDir = ''
  let ledger: LedgerEntry[]
  let mountsSeen: number
  const end = Date.now() + 120_000
  for (;;) {
    if (Date.now() > end) throw new Error(`no namespace test got under way in 120 s; output:\n${output}`)
    runDir = runDir || (readdirSync(base).find((n) => n.startsWith('sidecar-lab-run-')) ?? '')
    if (runDir) {
      ledger = readLedger(join(base, runDir, 'ledger'))
      mountsSeen = mountsUnder(join(base, runDir)).length
      if ((await busy(ledger)) && (!needMount || mountsSeen > 0)) break
    }
    await sleep(100)
  }
  process.kill(target === 'group' ? -npm.pid! : npm.pid!, signal)
  // the ledger as the sweep will find it: read until the runner removes the folder
  const dir = join(base, runDir)
  const stopBy = Date.now() + 90_000
  while (existsSync(dir) && Date.now() < stopBy) {
    const now = readLedger(join(dir, 'ledger'))
    if (now.length > ledger.length) ledger = now
    await sleep(50)
  }
  const code = await exited
  return { code, output, runDir: dir, ledger, mountsSeen }
}

function checkNothingLeft(t: Test, r: Interrupted, signal: string): void {
  t.not(r.code, 0, `npm test exits non-zero after ${signal}`)
  t.match(r.output, new RegExp(`# test: ${signal}: removed .*(namespace|lab)`), 'the runner says what it removed')
  const namespaces = r.ledger.filter((e) => e.kind === 'netns').map((e) => e.name)
  t.ok(namespaces.length > 0, `the run had made namespaces (${namespaces.join(', ')})`)
  t.same(
    namespaces.filter((n) => netnsExists(n)),
    [],
    'none of its namespaces is left',
  )
  t.same(processesOf(r.runDir), [], 'no process of the run is left')
  t.same(mountsUnder(r.runDir), [], 'no mount under the run folder is left')
  t.notOk(existsSync(r.runDir), 'the run folder (its temporary folders) is gone')
  for (const lab of r.ledger.filter((e) => e.kind === 'lab')) {
    t.notOk(existsSync(join('/run/sidecar-lab', lab.name)), `lab ${lab.name}'s state is gone`)
  }
}

t.test('Ctrl-C (SIGINT to the process group) during a fault test: no namespace, process, mount or folder left', rootOnly(), async (t) => {
  const r = await interruptRun(t, ['test/faults/access-log-full-disk.test.ts'], 'SIGINT', 'group', true)
  t.ok(r.mountsSeen > 0, 'the test had mounted its small tmpfs when interrupted')
  checkNothingLeft(t, r, 'SIGINT')
})

t.test('SIGTERM to npm alone (a time limit) during the DNS lab test: the lab and its processes are gone', rootOnly(), async (t) => {
  const r = await interruptRun(t, ['test/integration/lab-dns.test.ts'], 'SIGTERM', 'npm')
  t.ok(
    r.ledger.some((e) => e.kind === 'lab'),
    'the run had built a lab',
  )
  checkNothingLeft(t, r, 'SIGTERM')
})

t.test('a run that starts removes what an interrupted one left, and says so', rootOnly(), async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'slt-interrupt-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  // An interrupted run's folder as SIGKILL leaves it: a dead owner, a namespace in its ledger, a temp folder.
  const dead = join(base, 'sidecar-lab-run-1')
  const ns = `slt-stale-${process.pid % 100000}`
  mkdirSync(join(dead, 'tmp', 'slt-some-test-x'), { recursive: true })
  writeFileSync(join(dead, 'owner'), '999999999 0\n') // no such pid
  writeFileSync(join(dead, 'ledger'), `netns ${ns}\n`)
  await run('ip', ['netns', 'add', ns])
  t.teardown(() => run('ip', ['netns', 'del', ns], { allowFailure: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: base }
  delete env.SIDECAR_LAB_TEST_TOTALS
  const r = await run('npm', ['test', '--', '--no-setup', 'test/errors.test.ts'], { env, allowFailure: true, timeoutMs: 120_000 })
  t.equal(r.code, 0, 'the run passes')
  t.match(r.stdout, `an earlier run was interrupted (${dead}): removed namespace ${ns}, 1 temporary folder (slt-some-test-x)`)
  t.notOk(netnsExists(ns), 'the namespace is gone')
  t.notOk(existsSync(dead), 'the folder is gone')
  t.same(readdirSync(base), [], 'the new run removed its own folder too')
})
