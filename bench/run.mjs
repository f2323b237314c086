#!/usr/bin/env node
// @ts-check
// npm run bench: sidecar-lab's sidecar (node and native relay) against a direct connection, HAProxy and the
// Node floor, in the same pods with the same capture rules, interleaved round by round (direct, sidecar-lab,
// ..., direct, ...). Before the rounds, a short trial picks HAProxy's better thread count. Needs root.
// usage: node bench/run.mjs [--quick] [--rounds N] [--lab NAME] [--record | --out DIR] [--only IDS] [--positions LIST] [--peers LIST]
//                           [--haproxy-nbthread 1|2] [--baseline FILE]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { benchFlags, flags, InvalidFlag, resultFlags, resultsDir } from './flags.mjs'
import { BenchLab, interruptible, root } from './harness.mjs'
import { machine, maxIdleFor } from './machine.mjs'
import { checkGoals, checkNodeRelay } from './goals.mjs'
import { describeChoice, haproxyTrial } from './haproxy-best.mjs'
import { nativeRelay, peerList, peers } from './peers.mjs'
import { renderMarkdown } from './report-md.mjs'
import { renderSvg } from './report-svg.mjs'
import { scenarios } from './scenarios.mjs'
import { summarise } from './stats.mjs'
import { memoryFigures, verdictLines } from './verdicts.mjs'

const usage =
  'usage: node bench/run.mjs [--quick] [--rounds N] [--lab NAME (default slb-bench)] [--record | --out DIR]\n' +
  '                          [--only SCENARIO,...] [--positions both,outbound,inbound] [--peers direct,sidecar-lab,haproxy]\n' +
  '                          [--haproxy-nbthread 1|2 (skips the trial)] [--baseline FILE (default bench/results/latest.json)]\n' +
  `peers: ${peers.map((p) => p.name + (p.optional ? ' (only when named)' : '')).join(', ')}\n` +
  `scenarios: ${scenarios.map((s) => s.id).join(', ')}\n` +
  'Results go to bench/results/tmp (not committed); --record writes the committed bench/results (a full run only: not\n' +
  '--quick, --only, --positions or --peers); --out DIR writes there.\n'
// The native peer needs the addon's relay engine; without it the peer is left out, and saying so is part of the run.
const native = nativeRelay()
const { values, rounds, onlyScenarios, onlyPositions, onlyPeers, fixedThreads, outDir } = benchFlags(
  'bench',
  {
    quick: { type: 'boolean' },
    rounds: { type: 'string' },
    lab: { type: 'string' },
    ...resultFlags,
    only: { type: 'string' },
    positions: { type: 'string' },
    peers: { type: 'string' },
    'haproxy-nbthread': { type: 'string' },
    baseline: { type: 'string' },
  },
  usage,
  (values) => {
    const scenarioIds = scenarios.map((s) => s.id)
    const peerNames = peers.map((p) => p.name)
    const named = values.peers === undefined ? undefined : flags.listOf('peers', values.peers, peerNames)
    if (named?.includes('sidecar-lab-native') && !native.available)
      throw new InvalidFlag(`--peers names sidecar-lab-native, but ${native.reason}`)
    // The recorded run is what the README and the goals cite: a short or partial run must not replace it.
    const partial = [values.quick && '--quick', values.only && '--only', values.positions && '--positions', values.peers && '--peers'].find(
      Boolean,
    )
    if (values.record && partial) throw new InvalidFlag(`--record records a full run; ${partial} makes a partial one (--out DIR keeps it)`)
    return {
      values,
      rounds: flags.integer('rounds', values.rounds, values.quick ? 1 : 3, 1, 20),
      onlyScenarios: values.only === undefined ? scenarioIds : flags.listOf('only', values.only, scenarioIds),
      onlyPositions: flags.listOf('positions', values.positions ?? 'both,outbound,inbound', ['both', 'outbound', 'inbound']),
      onlyPeers: (named ?? peers.filter((p) => !p.optional).map((p) => p.name)).filter(
        (p) => p !== 'sidecar-lab-native' || native.available,
      ),
      fixedThreads:
        values['haproxy-nbthread'] === undefined
          ? undefined
          : Number(flags.oneOf('haproxy-nbthread', values['haproxy-nbthread'], ['1', '2'])),
      outDir: resultsDir(values, 'bench/results', 'bench/results/tmp'),
    }
  },
)
if (values.peers === undefined)
  console.log(
    native.available
      ? `bench: peer sidecar-lab-native included: ${native.reason}`
      : `bench: peer sidecar-lab-native LEFT OUT: ${native.reason}`,
  )
// Read before the run writes its own latest.json over it.
const baselineFile = values.baseline ?? join(root, 'bench/results/latest.json')
const baseline = existsSync(baselineFile) ? JSON.parse(readFileSync(baselineFile, 'utf8')) : undefined
if (process.getuid?.() !== 0) {
  process.stderr.write('bench: needs root (network namespaces and iptables)\n')
  process.exit(1)
}
const quick = !!values.quick
const host = machine()
// Every idle connection costs a sidecar two descriptors, root here cannot raise the hard limit, and the sidecar
// keeps part of it for other things: 9,000 at a limit of 20,000 went over its budget (machine.mjs maxIdleFor).
const maxIdle = maxIdleFor(host.fdLimit)
/** @type {import('./scenarios.mjs').Sizes} */
const sizes = quick
  ? { bulkSeconds: 1, httpSeconds: 1, fixedSeconds: 2, cpsSeconds: 1, idle: [0, 10, 100] }
  : { bulkSeconds: 3, httpSeconds: 5, fixedSeconds: 6, cpsSeconds: 3, idle: [0, 1000, maxIdle] }

const lab = new BenchLab(values.lab ?? 'slb-bench')
const guard = interruptible(lab)

/** @type {import('./stats.mjs').Sample[]} */
const samples = []
const started = new Date()
/** @type {Awaited<ReturnType<typeof haproxyTrial>> | undefined} */
let trial
let nbthread = fixedThreads ?? 2
let runPeers = peerList({ nbthread })
try {
  console.log(`bench: lab ${lab.lab} up (${quick ? 'quick' : 'full'}, ${rounds} round(s))`)
  await lab.up()
  // Unrecorded, so the first recorded run does not pay for the server's JIT warm-up.
  await lab.setPosition('none')
  await scenarios.find((s) => s.id === 'http')?.run({ lab, sizes: { ...sizes, httpSeconds: 2 }, position: 'none', sidecar: false })
  if (fixedThreads === undefined && onlyPeers.some((p) => p.startsWith('haproxy'))) {
    trial = await haproxyTrial({ lab, sizes, rounds: quick ? 1 : 2, scenarios, stopping: () => guard.stopping, log: console.log })
    nbthread = trial.choice.nbthread
    runPeers = peerList({ nbthread })
    console.log(describeChoice(trial.choice, `trial of ${quick ? 1 : 2} round(s) through both sidecars`))
  } else if (onlyPeers.some((p) => p.startsWith('haproxy'))) console.log(`bench: HAProxy peer: nbthread ${nbthread} (--haproxy-nbthread)`)
  for (let round = 1; round <= rounds && !guard.stopping; round++) {
    for (const peer of runPeers.filter((p) => onlyPeers.includes(p.name))) {
      if (guard.stopping) break
      // ambient mode is another lab (in-pod rules, the node's ztunnel): rebuilt into it, and out for the next peer
      if (peer.ambient || lab.ambient) await lab.rebuild(!!peer.ambient)
      if (peer.sidecar) await lab.startSidecars(peer.sidecar)
      for (const position of peer.positions.filter((p) => p === 'none' || onlyPositions.includes(p))) {
        if (guard.stopping) break
        await lab.setPosition(position)
        for (const scenario of scenarios.filter((s) => onlyScenarios.includes(s.id))) {
          if (guard.stopping) break
          if (scenario.onlyBoth && position !== 'both') continue
          if (peer.scenarios && !peer.scenarios.includes(scenario.id)) continue
          const sample = { round, peer: peer.name, position, scenario: scenario.id }
          try {
            const metrics = await scenario.run({ lab, sizes, position, sidecar: !!peer.sidecar || !!peer.ambient })
            samples.push({ ...sample, metrics })
            console.log(`round ${round} ${peer.name.padEnd(18)} ${position.padEnd(8)} ${scenario.id.padEnd(8)} ${brief(metrics)}`)
            if (scenario.id === 'memory') for (const note of memoryFigures(metrics, sizes.idle).notes) console.log(`        ${note}`)
          } catch (err) {
            samples.push({ ...sample, error: String(/** @type {Error} */ (err).message ?? err) })
            console.log(
              `round ${round} ${peer.name.padEnd(18)} ${position.padEnd(8)} ${scenario.id.padEnd(8)} FAILED: ${/** @type {Error} */ (err).message}`,
            )
          }
        }
      }
    }
  }
} catch (err) {
  await guard.settle(err)
} finally {
  if (!guard.stopping) await lab.down()
}
if (guard.stopping) await guard.settle()

const summary = summarise(samples)
// the node relay against a baseline run: only comparable when made on the same kind of machine
const sameMachine = baseline?.machine?.cpu === host.cpu && baseline?.machine?.nproc === host.nproc
const result = {
  startedAt: started.toISOString(),
  seconds: Math.round((Date.now() - started.getTime()) / 1000),
  // the machine is shared: other work running beside the bench shows here (1, 5, 15 minute averages)
  loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
  machine: host,
  method: {
    quick,
    rounds,
    sizes,
    lab: lab.lab,
    peers: runPeers
      .filter((p) => onlyPeers.includes(p.name))
      .map((p) => ({
        name: p.name,
        label: p.label,
        positions: p.positions.filter((x) => x === 'none' || onlyPositions.includes(x)),
        ...(p.scenarios ? { scenarios: p.scenarios } : {}),
      })),
    nativeRelay: native,
    haproxy: { nbthread, chosenBy: trial ? 'trial' : fixedThreads !== undefined ? '--haproxy-nbthread' : 'default', trial },
    scenarios: scenarios.filter((s) => onlyScenarios.includes(s.id)).map((s) => ({ id: s.id, title: s.title })),
  },
  samples,
  summary,
  // A quick run is a smoke test: no verdicts, in the console or the files.
  ...(quick
    ? {}
    : {
        goals: checkGoals(summary),
        nodeRelay: baseline && {
          baseline: {
            file: baselineFile,
            commit: baseline.machine?.commit,
            startedAt: baseline.startedAt,
            cpu: baseline.machine?.cpu,
            sameMachine,
          },
          figures: checkNodeRelay(summary, baseline.summary ?? {}, { sameMachine }),
        },
      }),
}
mkdirSync(outDir, { recursive: true })
const json = JSON.stringify(result, null, 2) + '\n'
writeFileSync(join(outDir, `${started.toISOString().replace(/[:.]/g, '-')}.json`), json)
writeFileSync(join(outDir, 'latest.json'), json)
writeFileSync(join(outDir, 'latest.md'), renderMarkdown(result))
writeFileSync(join(outDir, 'latest.svg'), renderSvg(result))
const nativeNote = onlyPeers.includes('sidecar-lab-native') ? undefined : native.available ? 'not in --peers' : native.reason
for (const line of verdictLines(result, { nbthread, ...(nativeNote ? { nativeNote } : {}) })) console.log(line)
const failed = samples.filter((s) => s.error).length
console.log(`bench: ${samples.length} runs, ${failed} failed, ${result.seconds} s; results in ${outDir}/latest.{json,md,svg}`)
process.exit(failed ? 1 : 0)

/** @param {Record<string, number>} m */
function brief(m) {
  return Object.entries(m)
    .filter(([k]) => !k.startsWith('rss'))
    .map(([k, v]) => `${k}=${v >= 100 ? v.toFixed(0) : v.toFixed(3)}`)
    .join(' ')
}
