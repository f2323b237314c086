// Issue 13: the same seeded, randomized traffic through the node:net relay and the native relay, compared per
// connection: the bytes each end received (sha256), how each end saw the close (FIN, RST), the access-log lines
// and the admin counters of both sidecars (fields that legitimately differ normalized away). One pod pair; the
// sidecars and the two peer apps are started again for each engine, on a clean slate of counters.
//   SIDECAR_LAB_DIFF_SEED=N       repeat a run's traffic (the seed is printed)
//   SIDECAR_LAB_DIFF_ENGINES=A,B  which two engines to compare (default node,native; node,node checks the test)
//   SIDECAR_LAB_DIFF_CONNS=N      connections per engine (default 36)
//   SIDECAR_LAB_DIFF_DUMP=FILE    write both runs (outcomes, normalized lines and counters) as JSON, to study a mismatch
import t, { type Test } from 'tap'
import { mkdtempSync, chmodSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomInt } from 'node:crypto'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { nativeEngineOnly, parseEngine, type RelayEngine } from '../helpers/engine.js'
import { adminStats, eventually, podPair, repoRoot, spawnIn, startSidecar, type Pod, type Proc } from '../helpers/pods.js'
import { Control, type ConnOutcome } from '../helpers/diff-control.js'
import { describe, expectedFor, makePlans, normalizeAccessLine, normalizeStats, type Plan, type Side } from '../helpers/diff-plan.js'

const engines = (process.env.SIDECAR_LAB_DIFF_ENGINES ?? 'node,native')
  .split(',')
  .map((e) => parseEngine(e.trim(), 'SIDECAR_LAB_DIFF_ENGINES'))
if (engines.length !== 2) throw new Error(`SIDECAR_LAB_DIFF_ENGINES names ${engines.length} engines; give two, e.g. node,native`)
const seed = process.env.SIDECAR_LAB_DIFF_SEED ? Number(process.env.SIDECAR_LAB_DIFF_SEED) >>> 0 : randomInt(2 ** 32)
const CONNS = Number(process.env.SIDECAR_LAB_DIFF_CONNS ?? 36)
const PARALLEL = 6
const IDLE_CONNS = 2
// Only the client's sidecar has a short idle timeout, so exactly one relay decides when an idle connection ends;
// the plans' pauses (at most 400 ms) stay far below it.
const IDLE_TIMEOUT_MS = 3000
const PORT = 9080
// The client app's connections come from ports below the pods' ephemeral range (32768-60999), one port each, so
// none can be the port of a sidecar upstream the server reset: the kernel takes such a SYN as a packet of the
// reset upstream's conntrack entry (still in CLOSE), NAT is not consulted, and the connection goes around the
// client's sidecar (test/faults/conntrack-reopen.test.ts shows it). A CI run lost one connection's access line,
// and an idle timeout, that way.
const LOCAL_PORT_BASE = 20_000
if (CONNS > 5000) throw new Error(`SIDECAR_LAB_DIFF_CONNS is ${CONNS}; at most 5000 (each engine's run takes that many local ports)`)
const peerApp = join(repoRoot, 'test/helpers/apps/diff-peer.mjs')

interface EngineRun {
  engine: RelayEngine
  outcomes: ConnOutcome[]
  access: Record<'outbound' | 'inbound', string[]>
  stats: Record<'outbound' | 'inbound', Record<string, number | 'any'>>
}

function options(): { skip?: string; timeout: number } {
  const root = rootOnly()
  if (root.skip) return { ...root, timeout: 300_000 }
  return { ...(engines.includes('native') ? nativeEngineOnly() : {}), timeout: 300_000 }
}

async function stop(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
  await Promise.all(procs.map((p) => p.exited))
}

/** The startup lines must name the native engine when it was asked for, so a fallback cannot pass as native. */
function assertEngine(t: Test, proc: Proc, engine: RelayEngine, which: string): void {
  if (engine !== 'native') return
  const named = proc.stderr.some((l) => /\brelay\b.*\bnative\b|\bnative\b.*\brelay\b/i.test(l))
  t.ok(named, `the ${which} sidecar's startup log names the native relay engine`, { stderr: proc.stderr.slice(0, 5) })
}

async function runEngine(t: Test, client: Pod, server: Pod, plans: Plan[], engine: RelayEngine, portBase: number): Promise<EngineRun> {
  const dir = mkdtempSync(join(tmpdir(), 'slt-diff-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const control = new Control(join(dir, 'control.sock'))
  t.teardown(() => control.close())
  const json = ['--access-log-format', 'json']
  const outbound = await startSidecar(t, client, [...json, '--idle-timeout', `${IDLE_TIMEOUT_MS / 1000}s`], engine)
  const inbound = await startSidecar(t, server, json, engine)
  assertEngine(t, outbound, engine, 'client pod')
  assertEngine(t, inbound, engine, 'server pod')
  const peers = [spawnIn(t, server.ns, ['node', peerApp, 'server', join(dir, 'control.sock'), String(PORT)])]
  await control.ready('server')
  peers.push(spawnIn(t, client.ns, ['node', peerApp, 'client', join(dir, 'control.sock')]))
  await control.ready('client')

  const outcomes: ConnOutcome[] = []
  const queue = [...plans]
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let plan = queue.shift(); plan; plan = queue.shift())
        outcomes[plan.id] = await control.run(plan, server.ip, PORT, IDLE_TIMEOUT_MS, portBase + plan.id)
    }),
  )
  // Lines are written at close; the last closes may still be on their way through the sidecars.
  await eventually(() => outbound.accessLines().length >= plans.length && inbound.accessLines().length >= plans.length, 10_000).catch(
    () => {},
  )
  const stats = { outbound: normalizeStats(await adminStats(client)), inbound: normalizeStats(await adminStats(server)) }
  const access = {
    outbound: outbound.accessLines().map(normalizeAccessLine).sort(),
    inbound: inbound.accessLines().map(normalizeAccessLine).sort(),
  }
  await stop([...peers, outbound, inbound])
  control.close()
  return { engine, outcomes, access, stats }
}

/** Every engine on its own: each end got every byte sent to it, in order, and saw each FIN as FIN and RST as RST. */
function checkAgainstPlans(t: Test, run: EngineRun, plans: Plan[]): void {
  const wrong: string[] = []
  for (const plan of plans) {
    const o = run.outcomes[plan.id]!
    const say = (what: string) => wrong.push(`conn ${plan.id} (${describe(plan)}): ${what}`)
    for (const side of ['client', 'server'] as const) {
      const want = expectedFor(plan, side)
      if (o[side].rx !== want.bytes || o[side].sha256 !== want.sha256)
        say(`${side} received ${o[side].rx} bytes, expected ${want.bytes} (sha256 differs)`)
    }
    for (const s of plan.steps) {
      if (s.kind !== 'fin' && s.kind !== 'reset') continue
      const to: Side = s.side === 'client' ? 'server' : 'client'
      const seen = s.kind === 'fin' ? 'fin' : 'rst'
      if (!o[to].events.includes(seen))
        say(`${to} never saw the ${s.side}'s ${s.kind.toUpperCase()} (saw ${o[to].events.join(',') || 'nothing'})`)
    }
    if (plan.steps.some((s) => s.kind === 'idle') && !(o.client.events.includes('fin') && o.server.events.includes('fin')))
      say(`the idle timeout did not close both ends with a FIN (client ${o.client.events}, server ${o.server.events})`)
    if (o.stalls.length) say(`stalled: ${o.stalls.join('; ')}`)
  }
  t.same(wrong, [], `${run.engine}: every end received every byte sent to it and saw each FIN as FIN, each RST as RST`)
  t.equal(run.access.outbound.length, plans.length, `${run.engine}: one access-log line per connection in the client's sidecar`)
  t.equal(run.access.inbound.length, plans.length, `${run.engine}: one access-log line per connection in the server's sidecar`)
}

/** What the traffic held, so a passing run shows it exercised what it claims. */
function summary(plans: Plan[], run: EngineRun): string {
  const steps = plans.flatMap((p) => p.steps)
  const bytes = steps.reduce((n, s) => n + (s.kind === 'send' ? s.client + s.server : 0), 0)
  const count = (kind: string, side?: Side) => steps.filter((s) => s.kind === kind && (!side || ('side' in s && s.side === side))).length
  const closes = run.outcomes.flatMap((o) => [o.client.events.join('+'), o.server.events.join('+')])
  const kinds = [...new Set(closes)].map((k) => `${k || 'none'} x${closes.filter((c) => c === k).length}`)
  return (
    `${plans.length} connections, ${(bytes / 2 ** 20).toFixed(1)} MiB, FIN first by client ${count('fin', 'client')} / server ` +
    `${count('fin', 'server')}, resets by client ${count('reset', 'client')} / server ${count('reset', 'server')}, ` +
    `${count('pause')} pauses, ${count('idle')} idle timeouts; ${Object.keys(run.stats.outbound).length} + ` +
    `${Object.keys(run.stats.inbound).length} counters compared; ends saw: ${kinds.join(', ')}`
  )
}

t.test(`the same seeded traffic through the ${engines[0]} and the ${engines[1]} relay engines`, options(), async (t) => {
  t.comment(`seed ${seed}: SIDECAR_LAB_DIFF_SEED=${seed} repeats this traffic`)
  const plans = makePlans(seed, CONNS, IDLE_CONNS)
  const { client, server } = await podPair(t)
  for (const pod of [client, server]) await execIn(pod.ns, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=32768 60999'])
  const runs: EngineRun[] = []
  for (const [i, engine] of engines.entries()) runs.push(await runEngine(t, client, server, plans, engine, LOCAL_PORT_BASE + i * CONNS))
  const [a, b] = runs as [EngineRun, EngineRun]
  if (process.env.SIDECAR_LAB_DIFF_DUMP) writeFileSync(process.env.SIDECAR_LAB_DIFF_DUMP, JSON.stringify({ seed, plans, runs }, null, 1))
  t.comment(summary(plans, a))
  const tag = `${a.engine} vs ${b.engine} (seed ${seed})`

  for (const run of runs) checkAgainstPlans(t, run, plans)
  const differ = plans
    .filter((p) => JSON.stringify(a.outcomes[p.id]) !== JSON.stringify(b.outcomes[p.id]))
    .map((p) => ({ conn: p.id, plan: describe(p), [a.engine + ' (1)']: a.outcomes[p.id], [b.engine + ' (2)']: b.outcomes[p.id] }))
  t.same(differ, [], `${tag}: per connection, the same bytes (sha256) and the same FIN/RST at each end`)
  t.same(b.access.outbound, a.access.outbound, `${tag}: the client sidecar's access-log lines match (times, durations, ports aside)`)
  t.same(b.access.inbound, a.access.inbound, `${tag}: the server sidecar's access-log lines match`)
  t.same(b.stats.outbound, a.stats.outbound, `${tag}: the client sidecar's counters match`)
  t.same(b.stats.inbound, a.stats.inbound, `${tag}: the server sidecar's counters match`)
})
