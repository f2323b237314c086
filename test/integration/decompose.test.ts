// bench/decompose.mjs in a short form: each position sends the traffic where it says (the rule counters
// prove it), the parts are the differences of the positions, and no namespace is left. Nothing about speed.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

interface Sample {
  position: string
  requests: number
  errors: number
  cpuUs: Record<string, number>
  counters: Record<string, Record<string, number>>
}

t.test(
  'decompose: four positions, each proven by the rules it hit; parts = differences; lab removed',
  { ...rootOnly(), timeout: 200_000 },
  async (t) => {
    const lab = `slt-dec-${process.pid % 10000}`
    const out = mkdtempSync(join(tmpdir(), 'slt-dec-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(repoRoot, 'bench/decompose.mjs'), '--seconds', '0.5', '--rounds', '1', '--lab', lab, '--out', out],
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
    }
    const at = (p: string) => r.samples.find((s) => s.position === p)!
    for (const p of ['bare', 'rules', 'nat', 'sidecars'])
      t.ok(at(p).requests > 0 && at(p).errors === 0, `${p}: requests answered, none failed`)
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
    const sidecarCpu = (p: string) => (at(p).cpuUs.sidecarOut ?? NaN) + (at(p).cpuUs.sidecarIn ?? NaN)
    t.equal(sidecarCpu('rules') < sidecarCpu('sidecars'), true, 'the sidecars work only in their own position')
    const total = r.parts.find((p) => p.id === 'total')!.cpuUs
    t.equal(
      Math.round(total),
      Math.round(r.summary.sidecars!.cpuUs.total - r.summary.bare!.cpuUs.total),
      'the whole path = sidecars - bare',
    )
    t.match(readFileSync(join(out, 'latest.md'), 'utf8'), /\| the whole interception path \|/)
  },
)
