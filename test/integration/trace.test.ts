// `sidecar-lab trace` against a real lab: the kernel's trace shows the walkthrough's hops, the sidecars'
// own connections are RETURNed, two different 4-tuples, and no trace table is ever left behind.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import t from 'tap'
import { execIn } from '../../src/sys/netns.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const lab = `slt-trace-${process.pid % 10000}`
const cliPath = join(repoRoot, 'dist/cli.js')

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cliPath, ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** Every table in the pods' namespaces, so a leftover trace table (or anything else) shows. */
async function tables(): Promise<string> {
  const state = readState(lab)
  const out: string[] = []
  for (const [pod, p] of Object.entries(state?.pods ?? {}))
    out.push(`${pod}: ${(await execIn(p.ns, ['nft', 'list', 'tables'])).stdout.trim()}`)
  return out.join('\n')
}

interface JsonStep {
  n: number
  pod: string
  kind: string
  connection: number
  hook: string | null
  chain: string | null
  verdict: string
  iptables: string | null
  rewritten: { dst: string } | null
  packet: { src: string; dst: string; flags: string[] }
}
interface JsonReport {
  request: { status: string; client: string }
  connections: Array<{ role: string; client: string }>
  steps: JsonStep[]
  conntrack: Array<{ pod: string; nated: boolean; original: { sport: number } }>
  answers: {
    loop: { loops: boolean; repliesSkipNat: boolean; returns: Array<{ pod: string; iptables: string }> }
    newConnection: { newConnection: boolean }
  }
}

if (!rootOnly().skip) {
  t.before(async () => {
    const up = await cli(['lab', 'up', '--lab', lab])
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stderr}`)
  })
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
}

t.test("the walkthrough's hops, the RETURN rules that stop step 16, two 4-tuples, no table left", rootOnly(), async (t) => {
  const before = await tables()
  const r = await cli(['trace', '--lab', lab, '--json'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as JsonReport
  t.equal(report.request.status, 'HTTP 200')
  const chainsOf = (pod: string, conn: number, hook: string) =>
    report.steps
      .filter((s) => s.pod === pod && s.connection === conn && s.hook === hook && s.chain && !s.packet.flags.includes('ack'))
      .map((s) => s.chain)
  t.same(chainsOf('productpage', 0, 'output'), ['OUTPUT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'])
  t.match(report.steps.find((s) => s.chain === 'ISTIO_REDIRECT')?.rewritten, { dst: '127.0.0.1:15001' }, "the app's SYN leaves for 15001")
  t.same(chainsOf('reviews', 1, 'prerouting'), ['PREROUTING', 'ISTIO_INBOUND', 'ISTIO_IN_REDIRECT'])
  t.match(report.steps.find((s) => s.chain === 'ISTIO_IN_REDIRECT')?.rewritten?.dst, /:15006$/, 'the inbound SYN goes to 15006')
  t.same(
    report.answers.loop.returns.map((x) => [x.pod, x.iptables]),
    [
      ['productpage', '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN'],
      ['reviews', '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN'],
      ['reviews', '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN'],
    ],
    "reviews' own call to ratings: its sidecar's connection is returned by the uid rule too",
  )
  t.same(
    chainsOf('reviews', 3, 'output'),
    ['OUTPUT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT'],
    "reviews' app calling ratings is captured like productpage's",
  )
  t.equal(report.answers.loop.loops, false)
  t.equal(report.answers.loop.repliesSkipNat, true, 'no SYN-ACK entered a nat chain')
  t.ok(
    report.steps.some((s) => s.packet.flags.includes('ack')),
    'SYN-ACKs were traced',
  )

  const [app, outbound] = report.connections
  t.equal(app?.role, 'app')
  t.equal(outbound?.role, 'outbound sidecar')
  t.not(app?.client, outbound?.client, "the sidecar's connection has its own 4-tuple")
  const port = (e: string | undefined) => Number(e?.split(':').at(-1))
  const ct = (sport: number) => report.conntrack.find((e) => e.pod === 'productpage' && e.original.sport === sport)
  t.equal(ct(port(app?.client))?.nated, true, "conntrack: the app's connection is NATed")
  t.equal(ct(port(outbound?.client))?.nated, false, "conntrack: the sidecar's own connection is not")
  t.equal(report.answers.newConnection.newConnection, true)

  t.notMatch(await tables(), /sidecar_lab_trace/, 'no trace table is left')
  t.equal(await tables(), before, 'the pods hold the tables they held before')
})

t.test('text and --svg: numbered steps, both answers, a diagram file', rootOnly(), async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slt-trace-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const r = await cli(['trace', '--lab', lab, '--svg', join(dir, 'trace.svg')])
  t.equal(r.code, 0, r.stderr)
  // a step's line wraps at 80 columns (stdout is a pipe): its continuations are indented 4 or more
  t.match(r.stdout, /\n *\d+\. \[w1\] +productpage output ip nat ISTIO_REDIRECT +rule:(?:[^\n]|\n {4,})*redirect to :15001/)
  t.match(r.stdout, /\n *\d+\. \[w4\] +reviews prerouting ip nat ISTIO_IN_REDIRECT +rule:(?:[^\n]|\n {4,})*redirect to :15006/)
  t.match(r.stdout, /A: No loop\./)
  t.match(r.stdout, /A: A new connection\./)
  const svg = readFileSync(join(dir, 'trace.svg'), 'utf8')
  t.match(svg, /^<svg [^>]*>[\s\S]*pod productpage[\s\S]*pod reviews[\s\S]*legend[\s\S]*<\/svg>\n$/)
})

t.test('--walkthrough --json: 15 steps in the documented shape, no trace step unassigned, 9-15 corrected', rootOnly(), async (t) => {
  const r = await cli(['trace', '--lab', lab, '--walkthrough', '--json'])
  t.equal(r.code, 0, r.stderr)
  const w = JSON.parse(r.stdout) as {
    steps: Array<{ n: number; verdict: string; meant: { verdict: string } | null }>
    unassigned: number[]
  }
  const schema = JSON.parse(readFileSync(join(repoRoot, 'docs/walkthrough.schema.json'), 'utf8')) as object
  const validate = new Ajv({ allErrors: true }).compile(schema)
  t.ok(validate(w), JSON.stringify(validate.errors))
  t.same(w.unassigned, [])
  t.same(
    w.steps.slice(8).map((s) => s.verdict),
    Array(7).fill('corrected'),
    'the reply is never captured again',
  )
  t.same(
    w.steps.slice(8).map((s) => s.meant?.verdict),
    ['confirmed', 'confirmed', 'corrected', 'confirmed', 'confirmed', 'confirmed', 'confirmed'],
  )
})

t.test('a failed request still removes the trace tables and exits 1', rootOnly(), async (t) => {
  // nothing listens on 9999: the sidecars accept, their upstream connect is refused, curl gets no reply
  const r = await cli(['trace', '--lab', lab, '--port', '9999'])
  t.equal(r.code, 1, r.stdout + r.stderr)
  t.match(r.stdout, /failed \(curl exit \d+\)/)
  t.notMatch(await tables(), /sidecar_lab_trace/)
})

t.test('interrupted with SIGINT at any moment: no trace table is left', rootOnly(), async (t) => {
  const child = spawn('node', [cliPath, 'trace', '--lab', lab], { stdio: 'ignore' })
  setTimeout(() => child.kill('SIGINT'), 400)
  await new Promise((resolve) => child.once('close', resolve))
  t.notMatch(await tables(), /sidecar_lab_trace/)
})

t.test('a lab that is not up: exit 2 and a message that says so', async (t) => {
  const r = await cli(['trace', '--lab', 'slt-trace-nolab'])
  t.equal(r.code, 2)
  t.match(r.stderr, /lab slt-trace-nolab is not up/)
})

t.test('bad flags: unknown pod, bad port, unknown flag', async (t) => {
  t.match((await cli(['trace', '--to', 'details'])).stderr, /--to: no pod "details"/)
  t.match((await cli(['trace', '--port', '70000'])).stderr, /--port: 70000 is not a port \(1-65535\)/)
  t.match((await cli(['trace', '--bogus'])).stderr, /unknown flag --bogus/)
})
