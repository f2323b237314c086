// Network namespaces and veth links: the lab's pods and the tests' hosts are built from these.
import { existsSync } from 'node:fs'
import { alive, run } from './exec.js'
import { recordCreated } from './ledger.js'

export function netnsPath(name: string): string {
  return `/run/netns/${name}`
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name))
}

/** argv that runs a program inside a namespace (optionally as another uid/gid, with no extra groups). */
export function inNetns(ns: string, argv: string[], user?: { uid: number; gid: number }): string[] {
  const prefix = ['ip', 'netns', 'exec', ns]
  if (!user) return [...prefix, ...argv]
  return [...prefix, 'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', ...argv]
}

export function execIn(ns: string, argv: string[], options: Parameters<typeof run>[2] = {}) {
  const [program, ...args] = inNetns(ns, argv)
  return run(program!, args, options)
}

export async function addNetns(name: string): Promise<void> {
  if (netnsExists(name)) await deleteNetns(name)
  recordCreated('netns', name)
  await run('ip', ['netns', 'add', name])
  await execIn(name, ['ip', 'link', 'set', 'lo', 'up'])
}

export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return
  // Processes still inside keep the namespace alive; kill them so nothing outlives the lab or a test.
  const pids = await run('ip', ['netns', 'pids', name], { allowFailure: true })
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
  }
  await run('ip', ['netns', 'del', name], { allowFailure: true })
}

export interface VethEnd {
  ns: string
  ifname: string
  /** address with prefix, e.g. 198.18.0.1/24; none for a bridge port */
  cidr?: string
  cidr6?: string
}

/** A veth pair between two namespaces, addressed and up. */
export async function addVeth(a: VethEnd, b: VethEnd): Promise<void> {
  // The creator's pid is in the name (at most 15 characters: pids have at most 7 digits), so a later sweep
  // can tell a link some live process is still moving from one left behind by a process that died.
  const tag = Math.floor(Math.random() * 1e4)
  const tmpA = `slv${process.pid}a${tag}`
  const tmpB = `slv${process.pid}b${tag}`
  await run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB])
  for (const [tmp, end] of [
    [tmpA, a],
    [tmpB, b],
  ] as const) {
    await run('ip', ['link', 'set', tmp, 'netns', end.ns])
    await execIn(end.ns, ['ip', 'link', 'set', tmp, 'name', end.ifname])
    if (end.cidr) await execIn(end.ns, ['ip', 'addr', 'add', end.cidr, 'dev', end.ifname])
    if (end.cidr6) await execIn(end.ns, ['ip', '-6', 'addr', 'add', end.cidr6, 'dev', end.ifname, 'nodad'])
    await execIn(end.ns, ['ip', 'link', 'set', end.ifname, 'up'])
  }
}

/** Namespaces whose names start with prefix. */
export async function listNetns(prefix: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { allowFailure: true })
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix))
}

/**
 * Removes veth ends left in this namespace by an addVeth that was interrupted before moving them: by this
 * process, or by one that died. Links of another live process (a lab or test being built now) are left alone.
 */
export async function removeStrayVeths(): Promise<string[]> {
  const r = await run('ip', ['-o', 'link', 'show'], { allowFailure: true })
  const stray = [...r.stdout.matchAll(/^\d+: (slv(\d+)[ab]\d+)[@:]/gm)]
    .filter((m) => Number(m[2]) === process.pid || !alive(Number(m[2])))
    .map((m) => m[1]!)
  for (const name of stray) await run('ip', ['link', 'del', name], { allowFailure: true })
  return stray
}
