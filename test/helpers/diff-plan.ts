// The relay differential test's traffic: seeded plans (one per connection) of sends, pauses, half-closes,
// resets and idle periods, the bytes each end must receive, and the normalization that lets two runs'
// access-log lines and counters be compared. Pure: no sockets here (test/helpers/apps/diff-peer.mjs runs them).
import { createHash } from 'node:crypto'

export type Side = 'client' | 'server'
export type Step =
  | { kind: 'send'; client: number; server: number }
  | { kind: 'pause'; ms: number }
  | { kind: 'fin'; side: Side }
  | { kind: 'reset'; side: Side }
  /** no bytes until the client's sidecar's idle timeout closes both ends; then both ends reset */
  | { kind: 'idle' }

export interface Plan {
  id: number
  steps: Step[]
}

/** mulberry32: small, seedable, and the same sequence on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const other = (side: Side): Side => (side === 'client' ? 'server' : 'client')

/** Sizes from 0 to 4 MiB, most of them small; `big` bounds the MiB-sized ones so the run stays short. */
function sizer(rand: () => number, big: { left: number }): () => number {
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1))
  return () => {
    const r = rand()
    if (r < 0.15) return 0
    if (r < 0.45) return between(1, 1024)
    if (r < 0.75) return between(1025, 64 << 10)
    if (r < 0.93 || big.left <= 0) return between((64 << 10) + 1, 1 << 20)
    big.left--
    return between((1 << 20) + 1, 4 << 20)
  }
}

/** `count` plans from one seed; `idle` of them (the first ones after the seed's shuffle) sit idle past the timeout. */
export function makePlans(seed: number, count: number, idle: number): Plan[] {
  const rand = prng(seed)
  const size = sizer(rand, { left: 8 })
  const idleIds = new Set<number>()
  while (idleIds.size < Math.min(idle, count)) idleIds.add(Math.floor(rand() * count))
  const plans: Plan[] = []
  for (let id = 0; id < count; id++) {
    const steps: Step[] = []
    const exchanges = 1 + Math.floor(rand() * 3)
    for (let i = 0; i < exchanges; i++) {
      const who = rand()
      steps.push({ kind: 'send', client: who < 0.67 ? size() : 0, server: who >= 0.33 ? size() : 0 })
      if (rand() < 0.25) steps.push({ kind: 'pause', ms: 50 + Math.floor(rand() * 350) })
    }
    const first: Side = rand() < 0.5 ? 'client' : 'server'
    const end = rand()
    if (idleIds.has(id)) steps.push({ kind: 'idle' })
    else if (end < 0.62) {
      // half-close from either side, the other direction still carrying bytes, then the other side's FIN
      steps.push({ kind: 'fin', side: first })
      if (rand() < 0.6)
        steps.push(first === 'client' ? { kind: 'send', client: 0, server: size() } : { kind: 'send', client: size(), server: 0 })
      steps.push({ kind: 'fin', side: other(first) })
    } else {
      // a reset mid-stream from either side, sometimes after the other side half-closed
      if (rand() < 0.3) steps.push({ kind: 'fin', side: other(first) })
      steps.push({ kind: 'reset', side: first })
    }
    plans.push({ id, steps })
  }
  return plans
}

/** The seed of the bytes one side sends in one step (the same in the peer app and here). */
export function dataSeed(id: number, step: number, side: Side): number {
  return (Math.imul(id + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ (side === 'client' ? 0x1b873593 : 0xcc9e2d51)) >>> 0
}

/** The bytes diff-peer.mjs sends for a seed (its xorshift32, kept in step with it). */
export function stepData(bytes: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(bytes / 4))
  let x = seed >>> 0 || 0x9e3779b9
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
  return Buffer.from(words.buffer, 0, bytes)
}

/** What `side` must receive: every byte the other side sends in the plan, in order. */
export function expectedFor(plan: Plan, side: Side): { bytes: number; sha256: string } {
  const from = other(side)
  const hash = createHash('sha256')
  let bytes = 0
  plan.steps.forEach((s, i) => {
    if (s.kind !== 'send' || s[from] === 0) return
    bytes += s[from]
    hash.update(stepData(s[from], dataSeed(plan.id, i, from)))
  })
  return { bytes, sha256: hash.digest('hex') }
}

/** A plan in one line, for failure messages. */
export function describe(plan: Plan): string {
  return plan.steps
    .map((s) =>
      s.kind === 'send'
        ? `send c${s.client}/s${s.server}`
        : s.kind === 'pause'
          ? `pause ${s.ms}ms`
          : s.kind === 'idle'
            ? 'idle'
            : `${s.kind} ${s.side}`,
    )
    .join(', ')
}

/** An access-log JSON line without what differs between two runs of the same traffic: times, durations, ports. */
export function normalizeAccessLine(line: string): string {
  const e = JSON.parse(line) as Record<string, unknown>
  const noPort = (v: unknown) => (typeof v === 'string' ? v.replace(/:\d+$/, ':PORT') : v)
  return JSON.stringify({
    ...e,
    start_time: 'T',
    duration: 'D',
    upstream_local_address: noPort(e.upstream_local_address),
    downstream_remote_address: noPort(e.downstream_remote_address),
  })
}

// Statistics that legitimately differ between two runs of the same traffic: times and sizes of the process
// (uptime, memory, event loop), histograms of durations, how often a buffer filled (flow control depends on
// speed, not on the bytes), the access log's write batching, and the admin's own requests. Their names still count.
const volatileStat =
  /uptime|memory|heap|event_loop|_ms$|_ms\.|flow_control|filesystem\.|concurrency|server\.(live|state|version)|http\.admin/

// The native engine's own (its pipes, sidecar.relay_pipes_max): the node engine has no counterpart.
const nativeOnlyStat = /^sidecar\.relay_/

/** Counters by name; the volatile ones by name only (both engines must have them, at whatever value). */
export function normalizeStats(stats: Record<string, number>): Record<string, number | 'any'> {
  return Object.fromEntries(
    Object.entries(stats)
      .filter(([name]) => !nativeOnlyStat.test(name))
      .map(([name, value]): [string, number | 'any'] => [name, volatileStat.test(name) ? 'any' : value])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
}
