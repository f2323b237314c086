// Removing what a test run made, also when it was interrupted (issue 24). The test runner (scripts/test.mjs)
// gives each run a folder, <tmpdir>/sidecar-lab-run-<pid>, and starts every test with three variables set:
// SIDECAR_LAB_RUN (that folder: each process of the run carries it in its environment, so the sweep finds
// them in /proc however they were started), SIDECAR_LAB_LEDGER (the namespaces and labs made, written before
// they exist: src/sys/ledger.ts) and TMPDIR (the run's temporary folders and mounts live under it). A sweep
// kills the run's processes, takes its labs down, deletes its namespaces, unmounts and removes the folder.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { alive, run } from '../sys/exec.js'
import { readLedger } from '../sys/ledger.js'
import { deleteNetns, netnsExists, removeStrayVeths } from '../sys/netns.js'
import { down } from './lifecycle.js'
import { stateRoot } from './state.js'

export const runPrefix = 'sidecar-lab-run-'

export interface SweepReport {
  processes: number
  labs: string[]
  namespaces: string[]
  mounts: string[]
  /** temporary files and folders the run's tests left in its TMPDIR */
  tempEntries: string[]
}

/** The environment a run's processes get; the folder's owner file names the runner (pid and start time). */
export function runEnvironment(dir: string): Record<string, string> {
  // A run started by a test of another run carries both folders, so the outer sweep finds its processes too.
  const runs = [process.env.SIDECAR_LAB_RUN, dir].filter(Boolean).join(':')
  return { SIDECAR_LAB_RUN: runs, SIDECAR_LAB_LEDGER: join(dir, 'ledger'), TMPDIR: join(dir, 'tmp') }
}

/** A process's start time in clock ticks since boot, so a reused pid is not taken for the runner. */
function startTime(pid: number): string | undefined {
  try {
    // the fields after the command name (which may hold spaces and parentheses); starttime is field 22
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

export function writeOwner(dir: string, pid = process.pid): void {
  writeFileSync(join(dir, 'owner'), `${pid} ${startTime(pid) ?? ''}\n`)
}

/** The runner's pid while it still runs, undefined once it is gone. */
export function liveOwner(dir: string): number | undefined {
  try {
    const [pid, start] = readFileSync(join(dir, 'owner'), 'utf8').trim().split(' ')
    const n = Number(pid)
    return alive(n) && startTime(n) === start ? n : undefined
  } catch {
    return undefined
  }
}

/** Every run folder in base (the runner's tmpdir). */
export function runDirs(base = tmpdir()): string[] {
  try {
    return readdirSync(base)
      .filter((n) => n.startsWith(runPrefix))
      .map((n) => join(base, n))
  } catch {
    return []
  }
}

/** Pids whose environment says they belong to the run. */
function runProcesses(dir: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      const runs = readFileSync(`/proc/${pid}/environ`, 'latin1')
        .split('\0')
        .find((v) => v.startsWith('SIDECAR_LAB_RUN='))
      if (runs?.slice('SIDECAR_LAB_RUN='.length).split(':').includes(dir)) found.push(pid)
    } catch {
      // gone, or a kernel thread
    }
  }
  return found
}

/** Kills the run's processes, again until none is left (one may have started a child meanwhile). */
async function killProcesses(dir: string): Promise<number> {
  const killed = new Set<number>()
  for (let round = 0; round < 20; round++) {
    const pids = runProcesses(dir)
    if (pids.length === 0) break
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
        killed.add(pid)
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return killed.size
}

/** Mount points under dir, deepest first (/proc/self/mounts escapes spaces and the like in octal). */
function mountsUnder(dir: string): string[] {
  const points = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(dir + '/'))
  return [...new Set(points)].sort((a, b) => b.length - a.length)
}

export async function sweepRun(dir: string, log: Logger): Promise<SweepReport> {
  // runs started by this run's tests (the runner's own interruption test) first: they live in its TMPDIR
  for (const inner of runDirs(join(dir, 'tmp'))) await sweepRun(inner, log)
  const report: SweepReport = { processes: await killProcesses(dir), labs: [], namespaces: [], mounts: [], tempEntries: [] }
  const entries = readLedger(join(dir, 'ledger'))
  for (const { name } of entries.filter((e) => e.kind === 'lab')) {
    if ((await down(name, log)).removed.length) report.labs.push(name)
  }
  for (const { name } of entries.filter((e) => e.kind === 'netns')) {
    if (!netnsExists(name)) continue
    await deleteNetns(name)
    report.namespaces.push(name)
  }
  await removeStrayVeths()
  for (const point of mountsUnder(dir)) {
    await run('umount', ['-l', point], { allowFailure: true })
    report.mounts.push(point)
  }
  const tmp = join(dir, 'tmp')
  report.tempEntries = existsSync(tmp) ? readdirSync(tmp) : []
  rmSync(dir, { recursive: true, force: true })
  return report
}

/** At most three names, then how many more. */
function names(list: string[]): string {
  return list.length <= 3 ? list.join(', ') : `${list.slice(0, 3).join(', ')} and ${list.length - 3} more`
}

/** One sentence for a person: what the sweep removed, or that there was nothing. */
export function describeSweep(r: SweepReport): string {
  const parts = [
    r.processes ? `${r.processes} process${r.processes === 1 ? '' : 'es'}` : '',
    r.labs.length ? `lab${r.labs.length === 1 ? '' : 's'} ${names(r.labs)}` : '',
    r.namespaces.length ? `namespace${r.namespaces.length === 1 ? '' : 's'} ${names(r.namespaces)}` : '',
    r.mounts.length ? `${r.mounts.length} mount${r.mounts.length === 1 ? '' : 's'}` : '',
    r.tempEntries.length
      ? `${r.tempEntries.length} temporary folder${r.tempEntries.length === 1 ? '' : 's'} (${names(r.tempEntries)})`
      : '',
  ].filter(Boolean)
  return parts.length ? `removed ${parts.join(', ')}` : 'nothing was left'
}

/** Every lab with a state folder (`lab up` writes it first, so also half-built ones). */
export function labsUp(): string[] {
  try {
    return readdirSync(stateRoot()).filter((n) => existsSync(join(stateRoot(), n, 'state.json')))
  } catch {
    return []
  }
}

/**
 * `lab down --all`: every lab, and what interrupted test runs left (their processes, labs, namespaces, mounts
 * and folders). A test run still under way is left alone, with its labs: its own sweep removes them.
 */
export async function downAll(log: Logger): Promise<string[]> {
  const lines: string[] = []
  const live = runDirs().filter((d) => liveOwner(d) !== undefined)
  const busy = new Set(live.flatMap((d) => readLedger(join(d, 'ledger')).map((e) => e.name)))
  for (const dir of runDirs().filter((d) => !live.includes(d))) {
    lines.push(`test run ${dir} (interrupted): ${describeSweep(await sweepRun(dir, log))}`)
  }
  for (const lab of labsUp().filter((l) => !busy.has(l))) {
    const { removed } = await down(lab, log)
    lines.push(`lab ${lab}: removed ${removed.length ? removed.join(', ') : 'its state folder'}`)
  }
  for (const dir of live) lines.push(`test run ${dir} is still running (pid ${liveOwner(dir)}): left to it`)
  return lines
}
