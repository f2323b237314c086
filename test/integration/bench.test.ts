// The benchmark harness itself, in its --quick form: it runs in a lab of its own, every peer answers in every
// position it has (ambient and the HAProxy TLS pair in both only; the native relay peer when the addon has the
// engine, else a line says why it was left out), HAProxy's thread count is chosen and named, the JSON holds
// every scenario for every peer, and it leaves no namespace behind. Nothing about speed.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

interface Sample {
  peer: string
  position: string
  scenario: string
  metrics?: Record<string, number>
  error?: string
}

t.test(
  'npm run bench:quick: every scenario answers through every peer, and the lab is removed',
  { ...rootOnly(), timeout: 480_000 },
  async (t) => {
    const lab = `slt-bench-${process.pid % 10000}`
    const out = mkdtempSync(join(tmpdir(), 'slt-bench-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(repoRoot, 'bench/run.mjs'), '--quick', '--lab', lab, '--out', out],
        { timeout: 460_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    t.equal(run.code, 0, `bench exits 0\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`)
    t.same(await listNetns(`${lab}-`), [], 'no namespace of the bench lab is left')

    // Read from where --out said: a run that wrote elsewhere fails here.
    const result = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
      samples: Sample[]
      summary: Record<string, Record<string, Record<string, unknown>>>
      method: { nativeRelay: { available: boolean; reason: string }; haproxy: { nbthread: number; chosenBy: string } }
      goals?: unknown
    }
    const native = result.method.nativeRelay.available
    t.match(
      run.stdout,
      native ? /peer sidecar-lab-native included/ : /peer sidecar-lab-native LEFT OUT: .*relayStart/,
      'the run says whether the native relay peer runs',
    )
    t.ok([1, 2].includes(result.method.haproxy.nbthread), 'HAProxy ran with 1 or 2 threads')
    t.equal(result.method.haproxy.chosenBy, 'trial')
    t.match(run.stdout, new RegExp(`HAProxy peer: nbthread ${result.method.haproxy.nbthread} \\(trial`), 'the choice is printed')
    t.equal(result.goals, undefined, 'a quick run records no verdicts')
    t.match(run.stdout, /bench: a quick run is a smoke test .*no verdicts/, 'and says it is a smoke test')
    t.notMatch(run.stdout, /MISSED|^ +met /m, 'instead of verdicts')
    t.match(run.stdout, /outbound sidecar's memory per connection not given: 100 idle connections are too few/, 'nor a memory slope')
    const scenarios = ['memory', 'bulk-1', 'bulk-8', 'http', 'wrk', 'wrk-c10', 'fixed-1k', 'cps']
    const sidecars = ['sidecar-lab', ...(native ? ['sidecar-lab-native'] : []), 'haproxy', 'haproxy-splice', 'node-floor']
    const configs = ['direct/none', ...sidecars.flatMap((p) => ['both', 'outbound', 'inbound'].map((pos) => `${p}/${pos}`))]
    for (const scenario of scenarios) {
      for (const config of configs) {
        if (scenario === 'memory' && !config.endsWith('/both')) continue
        if (config.startsWith('haproxy-splice/') && !scenario.startsWith('bulk-')) continue
        const sample = result.samples.find((s) => s.scenario === scenario && `${s.peer}/${s.position}` === config)
        t.ok(sample?.metrics && !sample.error, `${scenario} through ${config} has figures${sample?.error ? `: ${sample.error}` : ''}`)
        t.equal(sample?.metrics?.errors ?? 0, 0, `${scenario} through ${config}: no request failed`)
      }
    }
    // measured in both only: ambient (one ztunnel for both pods) and the HAProxy TLS pair
    for (const scenario of scenarios) {
      for (const config of ['haproxy-tls/both', 'ambient/both']) {
        const sample = result.samples.find((s) => s.scenario === scenario && `${s.peer}/${s.position}` === config)
        t.ok(sample?.metrics && !sample.error, `${scenario} through ${config} has figures${sample?.error ? `: ${sample.error}` : ''}`)
        t.equal(sample?.metrics?.errors ?? 0, 0, `${scenario} through ${config}: no request failed`)
      }
    }
    t.notOk(
      result.samples.some((s) => ['ambient', 'haproxy-tls'].includes(s.peer) && s.position !== 'both'),
      'ambient and the TLS pair run in the position both only',
    )
    t.ok(result.summary['wrk']?.cpuPer1kReqZtunnel?.['ambient/both'], "the ztunnel's CPU per 1000 requests, as one process's")
    t.notOk(result.summary['wrk']?.cpuPer1kReqOut?.['ambient/both'], 'not as an outbound sidecar')
    t.ok(result.summary['bulk-1']?.MBps?.['sidecar-lab/both'], 'the summary has the sidecar figure')
    t.ok(result.summary['http']?.rps?.['haproxy/both'], 'the summary has the HAProxy figure')
    t.ok(result.summary['wrk']?.cpuPer1kReqOut?.['sidecar-lab/both'], "the summary has the sidecar's CPU per 1000 requests under wrk")
    t.match(readFileSync(join(out, 'latest.md'), 'utf8'), /\| bulk-1 \| throughput \(MB\/s\) \|/, 'the Markdown table has a throughput row')
    t.match(readFileSync(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the chart is an SVG')
  },
)
