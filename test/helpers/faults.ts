// The fault suite's helpers: both sidecars between two pods (test/helpers/pods.ts), the misbehaving apps
// (apps/fault-server.mjs, apps/fault-client.mjs), and what the suite reads from /proc about a sidecar.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { podPair, repoRoot, SIDECAR_READY_MS, spawnIn, startSidecar, type Pod, type Proc, type SidecarProc } from './pods.js'
import { engineFlags } from './engine.js'

const cli = join(repoRoot, 'dist/cli.js')

const apps = join(repoRoot, 'test/helpers/apps')
const appUser = { uid: 1000, gid: 1000 }

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface Mesh {
  client: Pod
  server: Pod
  outbound: SidecarProc
  inbound: SidecarProc
}

/** Two pods with the seed's capture rules and a sidecar (uid 1337) in each. */
export async function mesh(t: Teardown, flags: string[] = []): Promise<Mesh> {
  const { client, server } = await podPair(t)
  const outbound = await startSidecar(t, client, flags)
  const inbound = await startSidecar(t, server, flags)
  return { client, server, outbound, inbound }
}

/** Open descriptors of a process (root reads any /proc/PID/fd). */
export function fdCount(pid: number | undefined): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** VmRSS in KiB, from /proc/PID/status. */
export function rssKiB(pid: number | undefined): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Whether the process is still running (and not a zombie). */
export function running(proc: Proc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null
}

/** `ip netns exec` and `setpriv` exec the program, so the child's pid is the program's own. */
export function pidOf(proc: Proc): number {
  const pid = proc.child.pid
  if (pid === undefined) throw new Error('process has no pid')
  return pid
}

/** The fault server in a pod, as the app's uid; resolves once it listens. */
export async function faultServer(t: Teardown, pod: Pod, port: number, mode: 'source' | 'stall' | 'echo', bytes = 0): Promise<Proc> {
  const proc = spawnIn(t, pod.ns, ['node', join(apps, 'fault-server.mjs'), String(port), mode, String(bytes)], appUser)
  await proc.waitFor(/"listening"/)
  return proc
}

/** A fault client in a pod, as the app's uid (so the capture rules send it through the sidecar). */
export function faultClient(
  t: Teardown,
  pod: Pod,
  host: string,
  port: number,
  mode: 'download' | 'upload' | 'hold' | 'push-reset' | 'garbage',
  args: (string | number)[],
): Proc {
  return spawnIn(t, pod.ns, ['node', join(apps, 'fault-client.mjs'), host, String(port), mode, ...args.map(String)], appUser)
}

/** The first JSON line with {event} on stdout, parsed. */
export async function event<T = Record<string, unknown>>(proc: Proc, name: string, timeoutMs = 30_000): Promise<T> {
  return JSON.parse(await proc.waitFor(new RegExp(`"event":"${name}"`), 'stdout', timeoutMs)) as T
}

/** Polls fn until it returns true, and says what it last saw when the time is up. */
export async function until(
  what: string,
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  saw: () => unknown = () => '',
): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms (last seen: ${JSON.stringify(saw())})`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until a sidecar holds no more descriptors than before (slack: the admin's keep-alive connection). */
export async function fdsBackTo(pid: number, baseline: number, timeoutMs = 15_000): Promise<number> {
  await until(
    `descriptors of ${pid} back to ${baseline}`,
    () => fdCount(pid) <= baseline + 1,
    timeoutMs,
    () => fdCount(pid),
  )
  return fdCount(pid)
}

/**
 * `sidecar-lab proxy` in a pod behind a wrapper that execs it (prlimit), so the pid is still the sidecar's;
 * access log off. Resolves once it is ready.
 */
export async function startWrappedSidecar(t: Teardown, pod: Pod, wrapper: string[], flags: string[] = []): Promise<Proc> {
  const proc = spawnIn(t, pod.ns, [...wrapper, 'node', cli, 'proxy', ...engineFlags(), '--access-log', 'off', ...flags])
  await proc.waitFor(/sidecar ready/, 'stderr', SIDECAR_READY_MS)
  return proc
}
