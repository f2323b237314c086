#!/usr/bin/env node
// @ts-check
// What the walkthrough's "long interception path" costs one request (a new connection each, productpage ->
// reviews), split into its parts by four positions measured in turn, round by round:
//   bare      no capture rules in either pod
//   rules     Istio's rules in both pods, the client's traffic exempted: the client runs as uid 1337 (its SYN
//             walks OUTPUT -> ISTIO_OUTPUT to the uid RETURN) and reviews RETURNs the port just before
//             ISTIO_INBOUND's catch-all; conntrack tracks every packet, as the nat table needs
//   nat       as rules, plus the two NATs of the real path without a proxy: a DNAT in productpage's
//             ISTIO_OUTPUT (REDIRECT's own work, which cannot leave the pod) and a REDIRECT in reviews'
//             ISTIO_INBOUND to a second server
//   sidecars  Istio's rules as installed, the client as the app (uid 1000): both sidecars on the path (--relay's engine)
//   haproxy   as sidecars, with HAProxy in both sidecars' place (bench/peers.mjs's config, the bench's HAProxy peer):
//             what two real proxies cost on the same path; left out, with a line saying so, when haproxy is missing
// Differences between neighbours give the rules' cost, the NAT's, and the sidecars'. CPU counts the client,
// the server and the sidecars (user + system, where the kernel's netfilter work on a send mostly lands).
// usage: node bench/decompose.mjs [--seconds N] [--rounds N] [--relay node|native] [--haproxy-nbthread 1|2] [--lab NAME] [--record | --out DIR]
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { exec, netns, processes, state as labState } from './lab.mjs'
import { BenchLab, cpuSeconds, interruptible, root, serverIp } from './harness.mjs'
import { machine } from './machine.mjs'
import { benchFlags, defaultRelay, flags, relayFlag, relayValue, resultFlags, resultsDir } from './flags.mjs'
import { haproxyPeer } from './peers.mjs'

const usage =
  'usage: node bench/decompose.mjs [--seconds N (default 1.5)] [--rounds N (default 5)] [--lab NAME (default slb-decomp)] [--record | --out DIR]\n' +
  `                               [--relay node|native (the sidecars' engine, default ${defaultRelay})] [--haproxy-nbthread 1|2 (default 1)]\n` +
  'Results go to bench/results/tmp/decompose (not committed); --record writes the committed bench/results/decompose.\n'
const { seconds, rounds, relay, nbthread, outDir, values } = benchFlags(
  'decompose',
  {
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    lab: { type: 'string' },
    ...relayFlag,
    'haproxy-nbthread': { type: 'string' },
    ...resultFlags,
  },
  usage,
  (values) => ({
    seconds: flags.decimal('seconds', values.seconds, 1.5, 0, 30, true),
    rounds: flags.integer('rounds', values.rounds, 5, 1, 10),
    relay: relayValue(values.relay),
    // one request at a time: a second thread has nothing to run in parallel (bench/run.mjs's trial is for many)
    nbthread: Number(flags.oneOf('haproxy-nbthread', values['haproxy-nbthread'] ?? '1', ['1', '2'])),
    outDir: resultsDir(values, 'bench/results/decompose', 'bench/results/tmp/decompose'),
    values,
  }),
)
if (process.getuid?.() !== 0) {
  process.stderr.write('decompose: needs root (network namespaces and iptables)\n')
  process.exit(1)
}

const app = { uid: 1000, gid: 1000 }
const proxyUser = { uid: 1337, gid: 1337 }
/** server A answers on the path's own port; B behind reviews' REDIRECT in the nat position */
const servers = { a: [9190, 9193, 9194], b: [9290, 9293, 9294] }
const natPort = 9191

/** haproxy on the PATH (scripts/setup.sh installs it), else why the HAProxy position is left out */
const haproxyFound = spawnSync('haproxy', ['-v'], { encoding: 'utf8' })
const haproxy =
  haproxyFound.status === 0
    ? { available: true, version: /version (\S+)/.exec(haproxyFound.stdout)?.[1] ?? '?', nbthread }
    : {
        available: false,
        reason: `haproxy -v: ${haproxyFound.error?.message ?? `exit ${haproxyFound.status}`} (scripts/setup.sh installs it)`,
        nbthread,
      }

/** @typedef {'bare' | 'rules' | 'nat' | 'sidecars' | 'haproxy'} PositionId */
/** @type {Array<{ id: PositionId, title: string }>} */
const positions = [
  { id: 'bare', title: 'no capture rules' },
  { id: 'rules', title: 'capture rules walked, traffic exempted (RETURN)' },
  { id: 'nat', title: 'rules + two NAT redirects, no proxy' },
  { id: 'sidecars', title: `the full path: both sidecars (${relay} relay)` },
  ...(haproxy.available
    ? [{ id: /** @type {PositionId} */ ('haproxy'), title: `the full path, HAProxy in both sidecars' place (nbthread ${nbthread})` }]
    : []),
]
const haproxyPair = haproxyPeer('haproxy', { nbthread })
/** @type {import('./harness.mjs').SidecarPeer | undefined} the lab's own sidecar, to start again after HAProxy's turn */
let ourSidecar

const lab = new BenchLab(values.lab ?? 'slb-decomp')
const guard = interruptible(lab)
/** @type {Array<{ pod: 'productpage' | 'reviews', spec: string[] }>} */
let extra = []
/** @type {Record<string, number>} */
const serverPids = {}

/** @param {'productpage' | 'reviews'} pod @param {string[]} argv */
const ipt = (pod, argv) => netns.execIn(lab.ns(pod), ['iptables', '-t', 'nat', ...argv])

/** Inserts a rule just before a chain's last one (so a packet walks the whole chain up to it). */
async function insertBeforeLast(/** @type {'productpage' | 'reviews'} */ pod, /** @type {string} */ chain, /** @type {string[]} */ spec) {
  const listed = (await ipt(pod, ['-S', chain])).stdout.split('\n').filter((l) => l.startsWith(`-A ${chain} `)).length
  await ipt(pod, ['-I', chain, String(Math.max(1, listed)), ...spec])
  extra.push({ pod, spec: [chain, ...spec] })
}

async function clearExtra() {
  for (const { pod, spec } of extra.reverse()) await ipt(pod, ['-D', ...spec])
  extra = []
}

/** @param {PositionId} id */
async function setPosition(id) {
  await clearExtra()
  if (id === 'haproxy' && lab.sidecarName !== haproxyPair.name) await lab.startSidecars(haproxyPair)
  if (id !== 'haproxy' && ourSidecar && lab.sidecarName !== ourSidecar.name) {
    await lab.startSidecars(ourSidecar)
    await measure('sidecars', 1) // unrecorded: a fresh sidecar's JIT warm-up, as before the first round
  }
  await lab.setPosition(id === 'bare' ? 'none' : 'both')
  const port = ['-p', 'tcp', '-m', 'tcp', '--dport']
  if (id === 'rules') await insertBeforeLast('reviews', 'ISTIO_INBOUND', [...port, String(servers.a[0]), '-j', 'RETURN'])
  if (id === 'nat') {
    // before the uid-1337 RETURN, which is the 4th rule of istio-iptables' ISTIO_OUTPUT
    await ipt('productpage', [
      '-I',
      'ISTIO_OUTPUT',
      '4',
      ...port,
      String(servers.a[0]),
      '-j',
      'DNAT',
      '--to-destination',
      `${serverIp}:${natPort}`,
    ])
    extra.push({
      pod: 'productpage',
      spec: ['ISTIO_OUTPUT', ...port, String(servers.a[0]), '-j', 'DNAT', '--to-destination', `${serverIp}:${natPort}`],
    })
    await insertBeforeLast('reviews', 'ISTIO_INBOUND', [...port, String(natPort), '-j', 'REDIRECT', '--to-ports', String(servers.b[0])])
  }
}

async function startServers() {
  const dir = labState.ensurePodDir(lab.lab, 'reviews')
  for (const [name, ports] of Object.entries(servers)) {
    const log = join(dir, `decompose-server-${name}.log`)
    const pid = processes.startDetached(
      lab.ns('reviews'),
      [process.execPath, join(root, 'bench/apps/server.mjs'), ...ports.map(String)],
      log,
      app,
    )
    serverPids[name] = pid
    await processes.waitForLog(log, /bench server listening/, pid)
  }
}

/** Busy jiffies of the whole machine (all CPUs), to show work no process was charged for. */
function machineBusy() {
  const [, ...f] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).map(Number)
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)
}

/**
 * The ISTIO_* rules that counted packets since the last call (which zeroes them), per pod: the proof that
 * a position sent the traffic where it says (the exempting RETURN, the NATs, or the sidecars' redirects).
 */
async function ruleCounters() {
  /** @type {Record<string, Record<string, number>>} */
  const out = {}
  for (const pod of /** @type {const} */ (['productpage', 'reviews'])) {
    out[pod] = {}
    const listed = await netns.execIn(lab.ns(pod), ['iptables', '-t', 'nat', '-v', '-S'], { allowFailure: true })
    for (const line of listed.stdout.split('\n')) {
      const m = /^(-A ISTIO_\S+ .*?)-c (\d+) \d+ (.*)$/.exec(line)
      if (m && Number(m[2]) > 0) out[pod][`${m[1]}${m[3]}`] = Number(m[2])
    }
    await netns.execIn(lab.ns(pod), ['iptables', '-t', 'nat', '-Z'], { allowFailure: true })
  }
  return out
}

/** @param {PositionId} id @param {number} secs */
async function measure(id, secs) {
  await ruleCounters()
  const user = id === 'rules' || id === 'nat' ? proxyUser : app
  const server = id === 'nat' ? serverPids.b : serverPids.a
  const pids = { server, out: lab.sidecarPids.productpage, in: lab.sidecarPids.reviews }
  // which program each proxy pid is, the proof of whose CPU the sidecar columns count
  const proxies = { out: comm(pids.out), in: comm(pids.in) }
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]))
  const busy0 = machineBusy()
  const argv = [process.execPath, join(root, 'bench/apps/decompose-client.mjs'), serverIp, String(servers.a[0]), String(secs)]
  const [program, ...args] = netns.inNetns(lab.ns('productpage'), argv, user)
  const r = await exec.run(program ?? '', args, { timeoutMs: (secs + 40) * 1000, allowFailure: true })
  const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}')
  if (!(out.requests > 0)) throw new Error(`${id}: no request completed (${out.errors ?? '?'} errors): ${r.stderr.slice(-300)}`)
  const n = out.requests
  const us = (/** @type {string} */ k) => ((cpuSeconds(pids[/** @type {'server'} */ (k)]) - (before[k] ?? 0)) * 1e6) / n
  const cpu = { client: out.cpuUs / n, server: us('server'), sidecarOut: us('out'), sidecarIn: us('in') }
  return {
    requests: n,
    errors: out.errors,
    meanUs: out.latenciesMs.mean * 1000,
    p50Us: out.latenciesMs.p50 * 1000,
    p99Us: out.latenciesMs.p99 * 1000,
    cpuUs: { ...cpu, total: cpu.client + cpu.server + cpu.sidecarOut + cpu.sidecarIn },
    machineUs: ((machineBusy() - busy0) * 1e4) / n,
    proxies,
    counters: await ruleCounters(),
  }
}

/** A process's program name (/proc/PID/comm), '' when it is gone. @param {number | undefined} pid */
function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return ''
  }
}

/** @type {Array<{ round: number, position: PositionId } & Awaited<ReturnType<typeof measure>>>} */
const samples = []
const started = new Date()
const host = machine() // before the run, so its load average is the one the run started under
try {
  console.log(
    `decompose: lab ${lab.lab} up; sidecars with the ${relay} relay; ${positions.length} positions x ${rounds} round(s) x ${seconds} s`,
  )
  if (!haproxy.available) console.log(`decompose: the HAProxy position is left out: ${haproxy.reason}`)
  await lab.up(relay)
  await startServers()
  // the sidecar's own command line, so the one started again after HAProxy's turn is the same as lab up's
  const ownArgv = readFileSync(`/proc/${lab.sidecarPids.productpage}/cmdline`, 'utf8').split('\0').filter(Boolean)
  ourSidecar = { name: 'sidecar-lab', argv: () => ownArgv }
  for (const id of /** @type {PositionId[]} */ (['bare', 'sidecars'])) {
    await setPosition(id)
    await measure(id, 1) // unrecorded: JIT warm-up of client, server and sidecars
  }
  for (let round = 1; round <= rounds && !guard.stopping; round++) {
    for (const p of positions) {
      if (guard.stopping) break
      await setPosition(p.id)
      const m = await measure(p.id, seconds)
      samples.push({ round, position: p.id, ...m })
      console.log(
        `round ${round} ${p.id.padEnd(9)} ${String(m.requests).padStart(6)} req  mean ${m.meanUs.toFixed(0)} µs  p50 ${m.p50Us.toFixed(0)} µs  CPU ${m.cpuUs.total.toFixed(0)} µs/req`,
      )
    }
  }
} catch (err) {
  await guard.settle(err)
} finally {
  if (!guard.stopping) {
    await clearExtra().catch(() => {})
    for (const pid of Object.values(serverPids)) await processes.stop(pid)
    await lab.down()
  }
}
if (guard.stopping) await guard.settle()

const median = (/** @type {number[]} */ xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? (s[(s.length - 1) / 2] ?? NaN) : ((s[s.length / 2 - 1] ?? 0) + (s[s.length / 2] ?? 0)) / 2
}
/** @param {PositionId} id */
const summaryOf = (id) => {
  const mine = samples.filter((s) => s.position === id)
  const m = (/** @type {(s: typeof mine[number]) => number} */ f) => median(mine.map(f))
  return {
    requests: m((s) => s.requests),
    meanUs: m((s) => s.meanUs),
    p50Us: m((s) => s.p50Us),
    p99Us: m((s) => s.p99Us),
    cpuUs: {
      client: m((s) => s.cpuUs.client),
      server: m((s) => s.cpuUs.server),
      sidecarOut: m((s) => s.cpuUs.sidecarOut),
      sidecarIn: m((s) => s.cpuUs.sidecarIn),
      total: m((s) => s.cpuUs.total),
    },
    machineUs: m((s) => s.machineUs),
    /** the spread over rounds: what this shared machine's noise does to one position */
    cpuUsRange: [Math.min(...mine.map((s) => s.cpuUs.total)), Math.max(...mine.map((s) => s.cpuUs.total))],
    p50UsRange: [Math.min(...mine.map((s) => s.p50Us)), Math.max(...mine.map((s) => s.p50Us))],
  }
}
const summary = Object.fromEntries(positions.map((p) => [p.id, summaryOf(p.id)]))
/** @param {PositionId} a @param {PositionId} b */
const diff = (a, b) => {
  const [x, y] = [summaryOf(a), summaryOf(b)]
  return {
    meanUs: y.meanUs - x.meanUs,
    p50Us: y.p50Us - x.p50Us,
    cpuUs: y.cpuUs.total - x.cpuUs.total,
    machineUs: y.machineUs - x.machineUs,
  }
}
const parts = [
  { id: 'rules', title: 'capture rules walked (and conntrack on), no redirect', ...diff('bare', 'rules') },
  { id: 'nat', title: 'conntrack NAT of the two redirects', ...diff('rules', 'nat') },
  { id: 'sidecars', title: 'the two sidecars (accept, SO_ORIGINAL_DST, new connection, relay)', ...diff('nat', 'sidecars') },
  { id: 'total', title: 'the whole interception path', ...diff('bare', 'sidecars') },
  // beside the parts, not one of them: what two real proxies add in the sidecars' place
  ...(haproxy.available
    ? [{ id: 'haproxy', title: "two HAProxy in the sidecars' place (compare: the two sidecars)", ...diff('nat', 'haproxy') }]
    : []),
]
const result = {
  startedAt: started.toISOString(),
  seconds: Math.round((Date.now() - started.getTime()) / 1000),
  loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
  machine: host,
  method: {
    lab: lab.lab,
    relay,
    haproxy,
    rounds,
    secondsPerRun: seconds,
    positions,
    client: 'bench/apps/decompose-client.mjs: one request at a time, a new connection each (Connection: close)',
  },
  samples,
  summary,
  parts,
}
mkdirSync(outDir, { recursive: true })
const json = JSON.stringify(result, null, 2) + '\n'
writeFileSync(join(outDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`), json)
writeFileSync(join(outDir, 'latest.json'), json)
const { renderDecomposeMd } = await import('./decompose-md.mjs')
const md = renderDecomposeMd(result)
writeFileSync(join(outDir, 'latest.md'), md)
console.log(`\n${md}\ndecompose: ${samples.length} runs, ${result.seconds} s; results in ${outDir}/latest.{json,md}`)
process.exit(0)
