// `sidecar-lab trace` in a TPROXY lab: the mangle path of the inbound SYN (PREROUTING -> ISTIO_INBOUND ->
// ISTIO_TPROXY, the mark, the local route), conntrack without NAT in reviews, and the second answer saying
// that the sidecar's connection to the app carries the client's address.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { execIn } from '../../src/sys/netns.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const lab = `sltx${process.pid % 10000}`

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

interface JsonStep {
  n: number
  pod: string
  kind: string
  connection: number
  hook: string | null
  table: string | null
  chain: string | null
  verdict: string
  iptables: string | null
  note: string | null
  rewritten: unknown
  packet: { flags: string[] }
}
interface JsonReport {
  request: { status: string }
  mode: string
  routing: Record<string, string[]>
  connections: Array<{ role: string; pod: string; client: string; server: string }>
  steps: JsonStep[]
  conntrack: Array<{ pod: string; nated: boolean; line: string }>
  answers: { loop: { loops: boolean; repliesSkipNat: boolean }; newConnection: { newConnection: boolean; answer: string } }
}

if (!rootOnly().skip) {
  t.before(async () => {
    const up = await cli(['lab', 'up', '--lab', lab, '--mode', 'TPROXY'])
    if (up.code !== 0) throw new Error(`lab up failed: ${up.stderr}`)
  })
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
}

t.test('TPROXY trace: the mangle path, the mark, the local route, conntrack, and whose address the app sees', rootOnly(), async (t) => {
  const r = await cli(['trace', '--lab', lab, '--json'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as JsonReport
  t.equal(report.request.status, 'HTTP 200')
  t.equal(report.mode, 'TPROXY')
  const synIn = report.steps.filter(
    (s) => s.pod === 'reviews' && s.connection === 1 && s.hook === 'prerouting' && !s.packet.flags.includes('ack'),
  )
  t.same(
    synIn.map((s) => `${s.table} ${s.chain}`),
    ['ip mangle PREROUTING', 'ip mangle ISTIO_INBOUND', 'ip mangle ISTIO_TPROXY'],
    'the inbound SYN: mangle PREROUTING -> ISTIO_INBOUND -> ISTIO_TPROXY, no nat chain',
  )
  const tproxy = synIn[2]!
  t.match(tproxy.iptables, /-j TPROXY --on-port 15006 .*--tproxy-mark 0x539/, 'the TPROXY rule, as iptables -S prints it')
  t.equal(tproxy.rewritten, null, 'the SYN is not rewritten')
  t.match(tproxy.note, /marked 0x539.*fwmark 0x539 lookup 133.*local default dev lo/, 'the note names the mark and the local route')
  t.match(
    report.routing.reviews,
    [/fwmark 0x539 lookup 133/, /table 133: local default dev lo/],
    "reviews' policy routing is in the report",
  )

  const toApp = report.connections.find((c) => c.role === 'inbound sidecar')
  const caller = report.connections.find((c) => c.role === 'outbound sidecar')
  t.ok(toApp && caller, 'both sidecars relayed it')
  t.match(toApp!.client, /^198\.18\.0\.10:\d+$/, "the inbound sidecar's connection leaves from productpage's address")
  const accept = report.steps.find((s) => s.kind === 'sidecar' && s.pod === 'reviews')
  t.match(accept?.note, /TPROXY does not NAT/, 'the destination came from the local address, not SO_ORIGINAL_DST')
  const reviewsCt = report.conntrack.filter((e) => e.pod === 'reviews')
  // only the connections to reviews: reviews' own call to ratings goes out by REDIRECT (NATed to 15001)
  // whenever the trace saw it, as in REDIRECT mode, since TPROXY captures inbound only
  const inboundCt = reviewsCt.filter((e) => /^tcp \d+ \d+ \S+ src=\S+ dst=198\.18\.0\.20 /.test(e.line))
  t.ok(inboundCt.length >= 2 && inboundCt.every((e) => !e.nated), 'conntrack in reviews holds both inbound connections un-NATed')
  t.ok(
    reviewsCt.some((e) => /mark=1337/.test(e.line)),
    "the sidecar's connection to the app carries the mark in conntrack",
  )
  t.equal(report.answers.loop.loops, false)
  t.equal(report.answers.loop.repliesSkipNat, true, 'replies skip the nat chains (mangle only)')
  t.equal(report.answers.newConnection.newConnection, true)
  t.match(report.answers.newConnection.answer, /carries the client's address: 198\.18\.0\.10:\d+ -> 198\.18\.0\.20:9080/)
  // The caller is productpage's sidecar (its connection to reviews' app port), not reviews' own call to ratings,
  // which the trace also holds since reviews calls ratings on each request.
  t.match(
    report.answers.newConnection.answer,
    new RegExp(`from 198\\.18\\.0\\.10 \\(the caller, ${caller!.client.replaceAll('.', '\\.')}\\)`),
    "the caller named is productpage's sidecar, by its own connection's address and port",
  )
  t.match(caller!.client, /^198\.18\.0\.10:\d+$/, "the caller's connection leaves from productpage's address")

  const text = await cli(['trace', '--lab', lab])
  t.match(text.stdout, /TPROXY policy routing in reviews:\n {2}ip -4 rule from all fwmark 0x539 lookup 133/)
  const state = readState(lab)
  for (const p of Object.values(state?.pods ?? {}))
    t.notMatch((await execIn(p.ns, ['nft', 'list', 'tables'])).stdout, 'sidecar_lab_trace', 'no trace table is left')
})
