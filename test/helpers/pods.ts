// Two pods joined by veth, each with the seed's capture rules, and the processes the proxy tests run in
// them. Everything created here is removed in t.teardown, also when the test fails.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { addNetns, addVeth, deleteNetns, execIn, inNetns } from '../../src/sys/netns.js'
import { engineFlags, testEngine, type RelayEngine } from './engine.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
/**
 * How long a sidecar may take to say it is ready. Its start is no test's subject: on a loaded 2-core machine
 * (CI's fast tier runs three files at once) node took over 10 s to load the CLI once.
 */
export const SIDECAR_READY_MS = 30_000
const cli = join(repoRoot, 'dist/cli.js')
const apps = join(repoRoot, 'test/helpers/apps')

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface Pod {
  ns: string
  ip: string
  ip6: string
  /** a scratch folder the sidecar's uid can write to */
  dir: string
}

let serial = 0

/** The seed listing's raw and nat rules as iptables-restore --noflush input. */
export function seedRestoreText(): string {
  const lines = readFileSync(join(repoRoot, 'test/fixtures/seed-rules.txt'), 'utf8').split('\n')
  const out: string[] = []
  let table = ''
  const flush = (rows: string[]) => {
    if (!table) return
    out.push(`*${table}`, ...rows.filter((l) => l.startsWith('-N')), ...rows.filter((l) => l.startsWith('-A')), 'COMMIT')
  }
  let rows: string[] = []
  for (const line of lines) {
    const m = /^# table (\w+)/.exec(line)
    if (m) {
      flush(rows)
      table = m[1]!
      rows = []
    } else if (line.startsWith('-')) rows.push(line)
  }
  flush(rows)
  return out.join('\n') + '\n'
}

/** The same rules for ip6tables, with Istio's IPv6 equivalents of 127.0.0.6 and 127.0.0.1. */
export function seedRestoreText6(): string {
  return seedRestoreText().replaceAll('127.0.0.6/32', '::6/128').replaceAll('127.0.0.1/32', '::1/128')
}

export async function podPair(t: Teardown, options: { rules?: boolean } = {}): Promise<{ client: Pod; server: Pod }> {
  const tag = `slt-px-${process.pid % 100000}-${serial++}`
  const pods: Pod[] = ['c', 's'].map((side, i) => {
    const dir = mkdtempSync(join(tmpdir(), `${tag}-${side}-`))
    chmodSync(dir, 0o777)
    return { ns: `${tag}-${side}`, ip: `198.18.0.${i + 1}`, ip6: `2001:2::${i + 1}`, dir }
  })
  const [client, server] = pods as [Pod, Pod]
  t.teardown(async () => {
    for (const p of pods) {
      await deleteNetns(p.ns)
      rmSync(p.dir, { recursive: true, force: true })
    }
  })
  for (const p of pods) await addNetns(p.ns)
  await addVeth(
    { ns: client.ns, ifname: 'eth0', cidr: `${client.ip}/24`, cidr6: `${client.ip6}/64` },
    { ns: server.ns, ifname: 'eth0', cidr: `${server.ip}/24`, cidr6: `${server.ip6}/64` },
  )
  if (options.rules !== false) {
    for (const p of pods) {
      await execIn(p.ns, ['iptables-restore', '--noflush'], { input: seedRestoreText() })
      await execIn(p.ns, ['ip6tables-restore', '--noflush'], { input: seedRestoreText6() })
      // the inbound passthrough source for IPv6, as 127.0.0.6 is for IPv4 (127/8 is on lo already)
      await execIn(p.ns, ['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo'])
    }
  }
  return { client, server }
}

export interface Proc {
  child: ChildProcess
  /** lines printed so far on stdout and stderr */
  stdout: string[]
  stderr: string[]
  exited: Promise<number | null>
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<string>
}

export function spawnIn(t: Teardown, ns: string, argv: string[], user?: { uid: number; gid: number }): Proc {
  const [program, ...args] = inNetns(ns, argv, user)
  const child = spawn(program!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines = { stdout: [] as string[], stderr: [] as string[] }
  const waiters: (() => void)[] = []
  for (const stream of ['stdout', 'stderr'] as const) {
    createInterface({ input: child[stream]! }).on('line', (line) => {
      lines[stream].push(line)
      for (const w of waiters.splice(0)) w()
    })
  }
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (code) => {
      res(code)
      for (const w of waiters.splice(0)) w()
    }),
  )
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const proc: Proc = {
    child,
    ...lines,
    exited,
    waitFor(pattern, stream = 'stdout', timeoutMs = 10_000) {
      return new Promise((res, rej) => {
        const timer = setTimeout(
          () =>
            rej(new Error(`timed out waiting for ${pattern} on ${stream}; got:\n${lines[stream].join('\n')}\n${lines.stderr.join('\n')}`)),
          timeoutMs,
        )
        const check = () => {
          const hit = lines[stream].find((l) => pattern.test(l))
          if (hit !== undefined) {
            clearTimeout(timer)
            return res(hit)
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer)
            return rej(
              new Error(
                `process exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${lines.stdout.join('\n')}\n${lines.stderr.join('\n')}`,
              ),
            )
          }
          waiters.push(check)
        }
        check()
      })
    },
  }
  return proc
}

export interface SidecarProc extends Proc {
  accessLog: string
  /** access-log lines written so far */
  accessLines(): string[]
}

/**
 * Starts `sidecar-lab proxy` in the pod as root; it switches to uid 1337 unless flags say otherwise. The relay
 * engine is SIDECAR_LAB_TEST_RELAY's (test/helpers/engine.ts) unless the caller or flags name one.
 */
export async function startSidecar(t: Teardown, pod: Pod, flags: string[] = [], engine: RelayEngine = testEngine()): Promise<SidecarProc> {
  const accessLog = join(pod.dir, `access-${serial++}.log`)
  const relay = flags.includes('--relay') ? [] : engineFlags(engine)
  const proc = spawnIn(t, pod.ns, ['node', cli, 'proxy', ...relay, '--access-log', accessLog, ...flags])
  await proc.waitFor(/sidecar ready/, 'stderr', SIDECAR_READY_MS)
  return {
    ...proc,
    accessLog,
    accessLines() {
      try {
        return readFileSync(accessLog, 'utf8').split('\n').filter(Boolean)
      } catch {
        return []
      }
    },
  }
}

export async function startServerApp(t: Teardown, pod: Pod, port: number, mode: 'echo' | 'late-reply' | 'reset' = 'echo'): Promise<Proc> {
  const proc = spawnIn(t, pod.ns, ['node', join(apps, 'server.mjs'), String(port), mode])
  await proc.waitFor(/"listening"/)
  return proc
}

export interface ClientResult {
  sent: number
  sentSha256: string
  received: number
  receivedSha256: string
  firstReply: string
  error: string | null
  ms: number
  local: { address: string; port: number }
}

/** Runs the client app in the pod (as uid 1000, an ordinary app user) and returns its report. */
export async function runClient(t: Teardown, pod: Pod, host: string, port: number, bytes: number, paceMs = 0): Promise<ClientResult> {
  const proc = spawnIn(t, pod.ns, ['node', join(apps, 'client.mjs'), host, String(port), String(bytes), String(paceMs)], {
    uid: 1000,
    gid: 1000,
  })
  const line = await proc.waitFor(/"sentSha256"/, 'stdout', 90_000)
  return JSON.parse(line) as ClientResult
}

export { eventually } from './wait.js'

export interface CurlResult {
  /** HTTP status, 0 when no response came (refused, reset, timed out) */
  status: number
  body: string
}

/** curl inside the pod as root (captured like any app); a failed connection is status 0, not an error. */
export async function curlIn(pod: Pod, url: string, method = 'GET'): Promise<CurlResult> {
  const r = await execIn(pod.ns, ['curl', '-s', '-m', '5', '-X', method, '-o', '-', '-w', '\n%{http_code}', url], { allowFailure: true })
  const cut = r.stdout.lastIndexOf('\n')
  return { status: Number(r.stdout.slice(cut + 1)) || 0, body: r.stdout.slice(0, cut) }
}

/** The sidecar's counters and gauges from its admin port, by Envoy name. */
export async function adminStats(pod: Pod): Promise<Record<string, number>> {
  const r = await curlIn(pod, 'http://127.0.0.1:15000/stats?format=json')
  const out: Record<string, number> = {}
  for (const s of (JSON.parse(r.body) as { stats: { name?: string; value?: number }[] }).stats)
    if (s.name !== undefined && s.value !== undefined) out[s.name] = s.value
  return out
}

/** Polls the sidecar's admin port until the named statistic satisfies ok (a wait on the proxy's own state, not a sleep). */
export async function waitForStat(pod: Pod, name: string, ok: (value: number) => boolean, timeoutMs = 10_000): Promise<number> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = (await adminStats(pod))[name] ?? 0
    if (ok(value)) return value
    if (Date.now() > end) throw new Error(`${name} is still ${value} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
