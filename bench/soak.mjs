#!/usr/bin/env node
// @ts-check
// npm run soak: mixed load through both sidecars of a lab for a bounded time (default 10 minutes), with the
// lab's app in reviews killed and restarted now and then, while each sidecar's RSS, descriptors and event-loop
// delay are sampled. Ends with a table (stdout and soak.md), a plot (soak.svg) and soak.json in --out, and
// exits 1 when a check fails (bench/soak-report.mjs states them). The lab is removed at the end, also on
// failure or Ctrl-C. Needs root. usage: node bench/soak.mjs [--duration 10m] [--relay node|native] [--lab NAME] [--record | --out DIR]
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { BenchLab, interruptible, ports, quiet, root, rssBytes, serverIp } from './harness.mjs'
import { exec, netns, processes, state as labState } from './lab.mjs'
import { machine } from './machine.mjs'
import { checks, renderSoakMarkdown, renderSoakText } from './soak-report.mjs'
import { benchFlags, defaultRelay, flags, InvalidFlag, relayFlag, relayValue, resultFlags, resultsDir } from './flags.mjs'
import { renderSoakSvg } from './soak-svg.mjs'

const usage =
  `usage: node bench/soak.mjs [--duration 10m|60s|SECONDS] [--relay node|native (default ${defaultRelay})] [--lab NAME] [--record | --out DIR]\n` +
  'Results go to bench/results/tmp/soak (not committed); --record writes the committed bench/results/soak (soak-native with --relay native).\n'
const { durationMs, relay, outDir, values } = benchFlags(
  'soak',
  { duration: { type: 'string' }, ...relayFlag, lab: { type: 'string' }, ...resultFlags },
  usage,
  (values) => {
    const durationMs = flags.duration('duration', values.duration, 600_000, false)
    if (durationMs < 5000) throw new InvalidFlag(`--duration: ${values.duration} is shorter than 5 s`)
    const relay = relayValue(values.relay)
    const recorded = relay === 'native' ? 'bench/results/soak-native' : 'bench/results/soak'
    return { durationMs, relay, outDir: resultsDir(values, recorded, 'bench/results/tmp/soak'), values }
  },
)
if (process.getuid?.() !== 0) {
  process.stderr.write('soak: needs root (network namespaces and iptables)\n')
  process.exit(1)
}
// about 100 samples whatever the duration, never more often than every second nor less than every 5 s
const sampleMs = Math.max(1000, Math.min(5000, Math.round(durationMs / 100)))
// the peer is killed about every minute (three times in a short run), never in the last tenth
const killEveryMs = Math.min(60_000, Math.round(durationMs / 3))
const echoPort = 9093
const peerPort = 9080
const load = {
  shortPerSec: 50,
  bulkStreams: 2,
  bulkMB: 32,
  idle: 200,
  peerPerSec: 10,
  cannon: { connections: 4, overallRate: 200, segmentSeconds: 30 },
}
/** @typedef {'productpage' | 'reviews'} Pod */
const pods = /** @type {const} */ (['productpage', 'reviews'])
const side = /** @type {const} */ ({ productpage: 'outbound', reviews: 'inbound' })

const lab = new BenchLab(values.lab ?? 'slb-soak')
const guard = interruptible(lab)
/** @type {import('./soak-report.mjs').Sample[]} */
const samples = []
/** @type {{ workload: string, code: string, at: number }[]} */
const errors = []
/** @type {{ killedAt: number, readyAt: number }[]} */
const kills = []
const cannon = { segments: 0, requests: 0, errors: 0, non2xx: 0 }
/** @type {Record<string, Record<string, number>>} */
const counters = {}
/** @type {Record<string, number>} */
const baselineFds = {}
/** @type {Record<string, number>} */
const endFds = {}
/** @type {any} */
let final
/** @type {string[]} */
const problems = []
const started = new Date()
let t0 = Date.now()

try {
  console.log(`soak: lab ${lab.lab} up; relay ${relay}; ${Math.round(durationMs / 1000)} s of load, samples every ${sampleMs / 1000} s`)
  await lab.up(relay)
  const dir = labState.ensurePodDir(lab.lab, 'reviews')
  const echoPid = processes.startDetached(
    lab.ns('reviews'),
    [process.execPath, join(root, 'bench/apps/echo-server.mjs'), String(echoPort)],
    join(dir, 'echo-server.log'),
    { uid: 1000, gid: 1000 },
  )
  await processes.waitForLog(join(dir, 'echo-server.log'), /echo server listening/, echoPid)
  for (const pod of pods) baselineFds[pod] = fdCount(lab.sidecarPids[pod])

  t0 = Date.now()
  const deadline = t0 + durationMs
  const client = lab.spawnInteractive('productpage', [
    process.execPath,
    join(root, 'bench/apps/soak-client.mjs'),
    JSON.stringify({
      host: serverIp,
      ports: { http: ports.http, idle: ports.idle, echo: echoPort, peer: peerPort },
      ...load,
      maxSeconds: durationMs / 1000 + 120,
    }),
  ])
  const finalLine = new Promise((resolve) => {
    createInterface({ input: /** @type {import('node:stream').Readable} */ (client.stdout) }).on('line', (line) => {
      const m = JSON.parse(line)
      if (m.type === 'error') errors.push({ workload: m.workload, code: m.code, at: m.at })
      if (m.type === 'final') resolve(m)
    })
    client.once('exit', () => resolve(undefined))
  })
  await Promise.all([sampler(deadline), cannonLoop(deadline), killer(deadline)])
  client.stdin?.write('stop\n')
  final = await Promise.race([finalLine, sleep(90_000)])
  if (!final) problems.push('the soak client gave no final report')
  for (const pod of pods) counters[pod] = await adminStats(pod, '^listener\\.|^cluster\\.|^server\\.')
  // descriptors back where they were before the load: each sidecar, once the client and its connections are gone
  await quiet(
    pods.map((p) => lab.sidecarPids[p]),
    10_000,
  )
  await sleep(1500) // the admin's own keep-alive connection (1 s) closes too
  for (const pod of pods) endFds[pod] = fdCount(lab.sidecarPids[pod])
  for (const pod of pods) if (!exec.alive(lab.sidecarPids[pod])) problems.push(`the ${side[pod]} sidecar died`)
} catch (err) {
  await guard.settle(err)
} finally {
  if (!guard.stopping) await lab.down()
}
if (guard.stopping) await guard.settle()

const result = {
  startedAt: started.toISOString(),
  seconds: Math.round((Date.now() - started.getTime()) / 1000),
  loadSeconds: Math.round(durationMs / 1000),
  // the machine is shared: other work running beside the soak shows here (1, 5, 15 minute averages)
  loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
  machine: machine(),
  lab: lab.lab,
  relay,
  load,
  sampleMs,
  samples,
  kills: kills.map((k) => ({ killedAt: (k.killedAt - t0) / 1000, readyAt: (k.readyAt - t0) / 1000 })),
  errors: errors.map((e) => ({ ...e, at: (e.at - t0) / 1000 })),
  cannon,
  client: final ?? null,
  counters,
  baselineFds,
  endFds,
  problems,
}
const verdict = checks(result)
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'soak.json'), JSON.stringify({ ...result, verdict }, null, 2) + '\n')
writeFileSync(join(outDir, 'soak.md'), renderSoakMarkdown(result, verdict))
writeFileSync(join(outDir, 'soak.svg'), renderSoakSvg(result))
process.stdout.write(renderSoakText(result, verdict))
const failed = verdict.filter((c) => !c.ok)
console.log(
  `soak: ${failed.length ? `FAILED (${failed.map((c) => c.name).join(', ')})` : 'passed'}; results in ${outDir}/soak.{md,svg,json}`,
)
process.exit(failed.length ? 1 : 0)

/** @param {number | undefined} pid */
function fdCount(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return NaN
  }
}

/**
 * The sidecar's statistics from its admin port, from inside its pod (what `lab exec POD -- curl` does).
 * @param {Pod} pod @param {string} filter
 * @returns {Promise<Record<string, number>>}
 */
async function adminStats(pod, filter) {
  const url = `http://127.0.0.1:15000/stats?format=json&filter=${encodeURIComponent(filter)}`
  const r = await netns.execIn(lab.ns(pod), ['curl', '-s', '-m', '3', url], { allowFailure: true, timeoutMs: 5000 })
  try {
    /** @type {Record<string, number>} */
    const out = {}
    for (const s of JSON.parse(r.stdout).stats) if (s.name !== undefined) out[s.name] = s.value
    return out
  } catch {
    return {}
  }
}

/** RSS, descriptors and event-loop delay of both sidecars every sampleMs until the deadline. @param {number} deadline */
async function sampler(deadline) {
  while (!guard.stopping) {
    const at = Date.now()
    /** @type {import('./soak-report.mjs').Sample} */
    const sample = { t: (at - t0) / 1000 }
    for (const pod of pods) {
      const pid = lab.sidecarPids[pod]
      const el = await adminStats(pod, '^server\\.event_loop_delay')
      sample[side[pod]] = {
        rssMiB: exec.alive(pid) ? rssBytes(pid) / 2 ** 20 : NaN,
        fds: fdCount(pid),
        loopMaxMs: (el['server.event_loop_delay_max_us'] ?? NaN) / 1000,
        loopP99Ms: (el['server.event_loop_delay_p99_us'] ?? NaN) / 1000,
        loopPeakMs: (el['server.event_loop_delay_peak_us'] ?? NaN) / 1000,
      }
    }
    samples.push(sample)
    if (at >= deadline) return
    await sleep(Math.min(sampleMs - (Date.now() - at), deadline - Date.now()))
  }
}

/** Keep-alive HTTP with autocannon (bench's cannon.js), rate-limited, in segments that end by the deadline. @param {number} deadline */
async function cannonLoop(deadline) {
  while (!guard.stopping) {
    const seconds = Math.floor(Math.min(load.cannon.segmentSeconds, (deadline - Date.now()) / 1000))
    if (seconds < 1) return
    const options = {
      url: `http://${serverIp}:${ports.http}/1k`,
      connections: load.cannon.connections,
      overallRate: load.cannon.overallRate,
      duration: seconds,
    }
    /** @type {Partial<import('./apps/results.js').CannonRun>} */
    const r = await lab
      .runJson('productpage', [process.execPath, join(root, 'dist/lab/cannon.js'), JSON.stringify(options)], (seconds + 40) * 1000)
      .then((v) => /** @type {import('./apps/results.js').CannonRun} */ (v))
      .catch((err) => ({ error: String(err.message ?? err) }))
    cannon.segments++
    cannon.requests += r.requests ?? 0
    cannon.errors += r.errors ?? 0
    cannon.non2xx += r.non2xx ?? 0
    if (r.error) problems.push(`autocannon segment ${cannon.segments}: ${r.error}`)
  }
}

/** Kills the lab's app in reviews (SIGKILL) every killEveryMs and starts it again. @param {number} deadline */
async function killer(deadline) {
  const pod = lab.state.pods.reviews
  const dir = labState.ensurePodDir(lab.lab, 'reviews')
  for (let n = 1; !guard.stopping; n++) {
    const next = t0 + n * killEveryMs
    if (next > deadline - durationMs / 10) return
    await sleep(next - Date.now())
    const killedAt = Date.now()
    try {
      process.kill(/** @type {number} */ (pod?.pids.app), 'SIGKILL')
    } catch {
      problems.push('the lab app in reviews was already gone when the soak came to kill it')
    }
    await sleep(1000) // down for a second: connections to it are refused meanwhile
    const log = join(dir, `app-restart-${n}.log`)
    const argv = [process.execPath, join(root, 'dist/lab/app-server.js'), 'reviews', String(peerPort)]
    const pid = processes.startDetached(lab.ns('reviews'), argv, log, { uid: 1000, gid: 1000 })
    await processes.waitForLog(log, /listening/, pid)
    if (pod) pod.pids.app = pid
    labState.writeState(lab.state)
    kills.push({ killedAt, readyAt: Date.now() })
  }
}
