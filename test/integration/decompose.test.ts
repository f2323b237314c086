// bench/decompose.mjs in a short form: each position sends the traffic where it says (the rule counters
// prove it, and the proxies' program names whose CPU is counted), the parts are the differences of the
// positions, and no namespace is left. Two rounds, so the lab's sidecars come back after HAProxy's turn.
// HAProxy is required: scripts/setup.sh installs it. Nothing about speed.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

interface Sample {
  round: number
  position: string
  proxies: { out: string; in: string }
  requests: number
  errors: number
  cpuUs: Record<string, number>
  counters: Record<string, Record<string, number>>
}

t.test(
  "decompose: five positions (HAProxy in the sidecars' place the fifth), each proven by the rules it hit; parts = differences; lab removed",
  { ...rootOnly(), timeout: 200_000 },
  async (t) => {
    const lab = `slt-dec-${process.pid % 10000}`
    const out = mkdtempSync(join(tmpdir(), 'slt-dec-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(repoRoot, 'bench/decompose.mjs'), '--seconds', '0.5', '--rounds', '2', '--lab', lab, '--out', out],
        { timeout: 180_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    t.equal(run.code, 0, `${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`)
    t.same(await listNetns(`${lab}-`), [], 'no namespace of the lab is left')
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
      samples: Sample[]
      parts: Array<{ id: string; cpuUs: number }>
      summary: Record<string, { cpuUs: { total: number } }>
      method: { relay: string; haproxy: { available: boolean; reason?: string } }
    }
    t.equal(r.method.relay, 'native', 'the results name the engine (the default)')
    t.match(run.stdout, /^decompose: lab \S+ up; sidecars with the native relay;/, 'and so does the header')
    t.equal(r.method.haproxy.available, true, `HAProxy is installed (scripts/setup.sh): ${r.method.haproxy.reason ?? ''}`)
    const at = (p: string, round = 1) => r.samples.find((s) => s.position === p && s.round === round)!
    for (const round of [1, 2])
      for (const p of ['bare', 'rules', 'nat', 'sidecars', 'haproxy'])
        t.ok(at(p, round).requests > 0 && at(p, round).errors === 0, `round ${round} ${p}: requests answered, none failed`)
    t.same(at('haproxy').proxies, { out: 'haproxy', in: 'haproxy' }, 'haproxy: the proxies measured are HAProxy')
    for (const round of [1, 2])
      t.same(at('sidecars', round).proxies, { out: 'node', in: 'node' }, `round ${round} sidecars: the proxies measured are our sidecars`)
    const hits = (p: string, pod: string, re: RegExp) =>
      Object.entries(at(p).counters[pod] ?? {})
        .filter(([rule]) => re.test(rule))
        .reduce((a, [, n]) => a + n, 0)
    const n = (p: string) => at(p).requests
    t.same(at('bare').counters, { productpage: {}, reviews: {} }, 'bare: no ISTIO rule exists or counts')
    t.ok(hits('rules', 'productpage', /--uid-owner 1337 -j RETURN$/) >= n('rules'), 'rules: each SYN walked ISTIO_OUTPUT to the uid RETURN')
    t.ok(hits('rules', 'reviews', /--dport 9190 -j RETURN$/) >= n('rules'), 'rules: each SYN walked ISTIO_INBOUND to the exempting RETURN')
    t.equal(hits('rules', 'reviews', /REDIRECT/), 0, 'rules: nothing redirected')
    t.ok(hits('nat', 'productpage', /-j DNAT/) >= n('nat'), 'nat: DNAT in productpage')
    t.ok(hits('nat', 'reviews', /--dport 9191 -j REDIRECT --to-ports 9290$/) >= n('nat'), 'nat: REDIRECT in reviews')
    t.ok(hits('sidecars', 'productpage', /REDIRECT --to-ports 15001$/) >= n('sidecars'), 'sidecars: the app redirected to 15001')
    t.ok(hits('sidecars', 'reviews', /REDIRECT --to-ports 15006$/) >= n('sidecars'), 'sidecars: redirected to 15006 in reviews')
    t.ok(hits('haproxy', 'productpage', /REDIRECT --to-ports 15001$/) >= n('haproxy'), 'haproxy: the app redirected to 15001')
    t.ok(hits('haproxy', 'reviews', /REDIRECT --to-ports 15006$/) >= n('haproxy'), 'haproxy: redirected to 15006 in reviews')
    const sidecarCpu = (p: string) => (at(p).cpuUs.sidecarOut ?? NaN) + (at(p).cpuUs.sidecarIn ?? NaN)
    t.equal(sidecarCpu('rules') < sidecarCpu('sidecars'), true, 'the sidecars work only in their own position')
    const total = r.parts.find((p) => p.id === 'total')!.cpuUs
    t.equal(
      Math.round(total),
      Math.round(r.summary.sidecars!.cpuUs.total - r.summary.bare!.cpuUs.total),
      'the whole path = sidecars - bare',
    )
    const md = readFileSync(join(out, 'latest.md'), 'utf8')
    t.match(md, /\| the whole interception path \|/)
    t.match(md, /\n\| sidecars: the full path: both sidecars \(native relay\) \| [\d.]+ \|/, 'the sidecars row names the engine')
    t.match(md, /\n\| haproxy: the full path, HAProxy in both sidecars' place \(nbthread 1\) \| [\d.]+ \|/, 'the HAProxy row, same columns')
    t.match(md, /\n\| two HAProxy in the sidecars' place \(compare: the two sidecars\) \| [^\n]* \| - \|\n/, 'and its part')
  },
)
