// The soak in its shortest form: it runs in a lab of its own, passes its checks, writes the table and the
// plot, and leaves no namespace behind. Nothing about speed.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

t.test(
  'npm run soak -- --duration 20s: passes, prints the table, writes soak.md and soak.svg, removes its lab',
  { ...rootOnly(), timeout: 180_000 },
  async (t) => {
    const lab = `slt-soak-${process.pid % 10000}`
    const out = mkdtempSync(join(tmpdir(), 'slt-soak-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(repoRoot, 'bench/soak.mjs'), '--duration', '20s', '--lab', lab, '--out', out],
        { timeout: 170_000, maxBuffer: 16 << 20, env: { ...process.env, NODE_OPTIONS: '' } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    t.equal(run.code, 0, `soak exits 0\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`)
    t.match(run.stdout, /RSS at start \/ end \(MiB\)/, 'the text table is printed')
    t.match(run.stdout, /^ok {3}bytes: [1-9]\d* bulk streams/m, 'bulk streams were checked')
    t.same(await listNetns(`${lab}-`), [], 'no namespace of the soak lab is left')
    const md = readFileSync(join(out, 'soak.md'), 'utf8')
    t.match(md, /\| RSS at start \/ end \(MiB\) \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \|/, 'soak.md has the RSS row with figures')
    t.match(md, /\| bulk streams echoed, sha256 checked \| [1-9]\d* \|/, 'soak.md has the bulk row')
    t.notMatch(md, /\*\*FAIL\*\*/, 'no check failed')
    const svg = readFileSync(join(out, 'soak.svg'), 'utf8')
    t.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the plot is an SVG')
    t.equal(svg.match(/<polyline /g)?.length, 6, 'two lines (outbound, inbound) in each of the three panels')
    const json = JSON.parse(readFileSync(join(out, 'soak.json'), 'utf8')) as { samples: unknown[]; verdict: { ok: boolean }[] }
    t.ok(json.samples.length >= 10, `${json.samples.length} samples taken`)
    t.ok(
      json.verdict.every((c) => c.ok),
      'every check passed in soak.json',
    )
  },
)
