#!/usr/bin/env node
// @ts-check
// npm run profile: clinic doctor and clinic flame of the sidecar under autocannon load. The profiled sidecar
// runs in the lab pod in place of the normal one, as uid 1337 from the start (so the capture rules exempt it
// and clinic's files belong to it); the other pod keeps its normal sidecar, and the load crosses both.
// usage: node bench/profile.mjs [--pod productpage|reviews] [--seconds N] [--tool doctor,flame] [--relay node|native] [--lab NAME]
import { createRequire } from 'node:module'
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BenchLab, interruptible, ports, root, serverIp } from './harness.mjs'
import { exec, state as labState } from './lab.mjs'
import { sidecarLab, sidecarLabNative } from './peers.mjs'
import { benchFlags, defaultRelay, flags, relayFlag, relayValue } from './flags.mjs'

const usage =
  'usage: node bench/profile.mjs [--pod productpage|reviews] [--seconds N (1-120, default 15)] [--tool doctor,flame]\n' +
  `                               [--relay node|native (the profiled sidecar's engine, default ${defaultRelay})] [--lab NAME]\n`
const { pod, seconds, tools, relay, values } = benchFlags(
  'profile',
  { pod: { type: 'string' }, seconds: { type: 'string' }, tool: { type: 'string' }, lab: { type: 'string' }, ...relayFlag },
  usage,
  (values) => ({
    pod: flags.oneOf('pod', values.pod ?? 'productpage', /** @type {const} */ (['productpage', 'reviews'])),
    seconds: flags.integer('seconds', values.seconds, 15, 1, 120),
    tools: flags.listOf('tool', values.tool ?? 'doctor,flame', ['doctor', 'flame', 'bubbleprof', 'heapprofiler']),
    relay: relayValue(values.relay),
    values,
  }),
)
const clinic = join(dirname(createRequire(import.meta.url).resolve('clinic/package.json')), 'bin.js')
const outDir = join(root, 'bench/results/tmp/profile')
if (process.getuid?.() !== 0) {
  process.stderr.write('profile: needs root (network namespaces and iptables)\n')
  process.exit(1)
}

const lab = new BenchLab(values.lab ?? 'slb-profile')
const guard = interruptible(lab)

/** @param {string} tool @returns {import('./harness.mjs').SidecarPeer} */
const profiled = (tool) => ({
  name: `clinic-${tool}`,
  // cd and HOME first: clinic, its update checker and V8 write files there, which uid 1337 must own;
  // NO_INSIGHT: without it clinic asks about telemetry and, with no terminal, silently exits.
  argv: (dir) => [
    'setpriv',
    '--reuid=1337',
    '--regid=1337',
    '--clear-groups',
    'sh',
    '-c',
    'cd "$0" && HOME="$0" NO_INSIGHT=1 exec "$@"',
    dir,
    process.execPath,
    clinic,
    tool,
    '--open=false',
    '--dest',
    join(dir, `clinic-${tool}`),
    '--',
    ...(relay === 'native' ? sidecarLabNative : sidecarLab).argv(dir),
    '--drain-duration',
    '1s',
  ],
})

const reports = []
try {
  await lab.up()
  mkdirSync(outDir, { recursive: true })
  for (const tool of tools) {
    if (guard.stopping) break
    await lab.startSidecars(profiled(tool), [pod])
    const pid = lab.sidecarPids[pod]
    console.log(`profile: clinic ${tool} of the ${pod} sidecar (${relay} relay), autocannon -c 10 for ${seconds} s through both sidecars`)
    const r = /** @type {import('./apps/results.js').CannonRun} */ (
      await lab.runJson(
        'productpage',
        [
          process.execPath,
          join(root, 'dist/lab/cannon.js'),
          JSON.stringify({ url: `http://${serverIp}:${ports.http}/`, connections: 10, duration: seconds }),
        ],
        (seconds + 40) * 1000,
      )
    )
    console.log(`profile: ${Math.round(r.requestsPerSec)} requests/s, p99 ${r.latencyMs?.p99?.toFixed(2)} ms`)
    // The whole group: clinic passes the stop on to the sidecar, then builds its report.
    process.kill(-(/** @type {number} */ (pid)), 'SIGINT')
    const end = Date.now() + 240_000
    while (exec.alive(pid) && Date.now() < end) await sleep(250)
    const dir = join(labState.podDir(lab.lab, pod), `clinic-${tool}`)
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.html'))) {
      const to = join(outDir, `${tool}-${pod}-${f}`)
      copyFileSync(join(dir, f), to)
      reports.push({ to, size: statSync(to).size })
    }
  }
} catch (err) {
  await guard.settle(err)
} finally {
  if (!guard.stopping) await lab.down()
}
if (guard.stopping) await guard.settle()
for (const r of reports) console.log(`profile: ${r.to} (${Math.round(r.size / 1024)} KB)`)
process.exit(reports.length === tools.length ? 0 : 1)
