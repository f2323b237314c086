// `sidecar-lab trace` in an ambient lab (lab up --ambient): the ztunnel's hops matched to its access log, the
// mark 0x539 on the ztunnel's own SYNs and the in-pod REDIRECT they do not take (no loop), the app's reply
// marked 0x111 and routed back through lo by table 100; and --compare against a sidecar lab, counted.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ztunnelAccessLog } from '../../src/lab/ambient.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const ambientLab = `slta${process.pid % 10000}`
const sidecarLab = `slts${process.pid % 10000}`

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

interface Step {
  n: number
  pod: string
  kind: string
  connection: number
  hook: string | null
  table: string | null
  chain: string | null
  rule: string | null
  verdict: string
  iptables: string | null
  rewritten: unknown
  mark: number | null
  ctmark: number | null
  packet: { flags: string[]; src: { address: string; port: number }; dst: { address: string; port: number } }
  ztunnel: { direction: string; peer: { address: string; port: number }; originalDst: { address: string; port: number } } | null
  note: string | null
}
interface Report {
  mode: string
  request: { status: string; client: string }
  ztunnel: { pid: number; ns: string }
  connections: Array<{ role: string; pod: string; owner: { process: string; pid: number | null; ns: string } }>
  steps: Step[]
  conntrack: Array<{ pod: string; line: string }>
  routing: Record<string, string[]>
  answers: {
    loop: { yes: boolean | null }
    reply: { yes: boolean | null; steps: number[] }
    wire: { yes: boolean | null; steps: number[] }
  }
}

const isSyn = (s: Step) => !s.packet.flags.includes('ack')

if (!rootOnly().skip) {
  t.before(async () => {
    const amb = await cli(['lab', 'up', '--ambient', '--lab', ambientLab])
    if (amb.code !== 0) throw new Error(`lab up --ambient failed: ${amb.stderr}`)
    const sc = await cli(['lab', 'up', '--lab', sidecarLab])
    if (sc.code !== 0) throw new Error(`lab up failed: ${sc.stderr}`)
  })
  t.teardown(async () => {
    await cli(['lab', 'down', '--lab', ambientLab])
    await cli(['lab', 'down', '--lab', sidecarLab])
  })
}

t.test('ambient trace: the ztunnel hops, its marked SYNs, the REDIRECT not taken, the reply via fwmark 0x111', rootOnly(), async (t) => {
  const state = readState(ambientLab)!
  const r = await cli(['trace', '--lab', ambientLab, '--json'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as Report
  t.equal(report.request.status, 'HTTP 200')
  t.equal(report.mode, 'ambient')
  t.same(
    report.connections.map((c) => `${c.role} in ${c.pod}`),
    [
      'app in productpage',
      'ztunnel outbound in productpage',
      'ztunnel inbound in reviews',
      'app in reviews',
      'ztunnel outbound in reviews',
    ],
    "the app's connection, the ztunnel's two, and reviews' own call to ratings with the ztunnel's one",
  )
  for (const c of report.connections.filter((c) => c.role !== 'app'))
    t.same(c.owner, { process: 'ztunnel', pid: state.ambient!.ztunnel, ns: state.bridgeNs }, "the ztunnel's pid, in the node namespace")

  // every ztunnel hop is a line of the ztunnel's own access log
  const log = readFileSync(ztunnelAccessLog(ambientLab), 'utf8')
  const hops = report.steps.filter((s) => s.kind === 'ztunnel')
  t.same(
    hops.map((s) => `${s.pod} ${s.ztunnel!.direction}`),
    ['productpage outbound', 'reviews inbound', 'reviews outbound'],
  )
  for (const h of hops) t.match(log, `src.addr=${h.ztunnel!.peer.address}:${h.ztunnel!.peer.port} `, `hop ${h.n} is in the access log`)

  const own = report.connections.flatMap((c, i) => (c.role === 'app' ? [] : [i]))
  for (const i of own) {
    const synOut = report.steps.filter((s) => s.kind === 'netfilter' && s.connection === i && s.hook === 'output' && isSyn(s))
    t.ok(synOut.length > 0, `connection ${i}: its SYN traced`)
    t.ok(
      synOut.every((s) => s.mark === 0x539),
      `connection ${i}: the ztunnel's SYN carries mark 0x539 at every rule`,
    )
    t.ok(
      synOut.every((s) => s.rewritten === null),
      `connection ${i}: not redirected in its own pod`,
    )
  }
  const notTaken = report.steps.filter((s) => s.verdict === 'not taken')
  t.same(
    notTaken.map((s) => `${s.pod} ${s.connection} ${s.table} ${s.chain}`),
    ['productpage 1 ip nat ISTIO_OUTPUT', 'reviews 4 ip nat ISTIO_OUTPUT'],
    'the outbound SYNs of the ztunnel pass ISTIO_OUTPUT without a rule matching',
  )
  for (const s of notTaken) t.match(s.iptables, /! --mark 0x539\/0xfff -j REDIRECT --to-ports 15001$/, 'the REDIRECT rule, not taken')
  const loAccept = report.steps.find((s) => s.connection === 2 && s.chain === 'ISTIO_OUTPUT' && isSyn(s))
  t.match(loAccept?.iptables, /-o lo -j ACCEPT/, "the ztunnel's SYN to the app is accepted on lo before the REDIRECT")
  t.equal(report.answers.loop.yes, false, 'no loop')

  // the reply: ct mark 0x111 set by the marked SYN, restored onto the SYN-ACK, which comes back in on lo
  const toApp = report.steps.filter((s) => s.connection === 2 && s.pod === 'reviews' && s.kind === 'netfilter')
  const setCt = toApp.find((s) => isSyn(s) && s.hook === 'prerouting' && /ct mark set/.test(s.rule ?? ''))
  t.equal(setCt?.ctmark, 0x111, 'ISTIO_PRERT gives the ztunnel-to-app connection ct mark 0x111')
  const restore = toApp.find((s) => !isSyn(s) && s.hook === 'output' && /meta mark set ct mark/.test(s.rule ?? ''))
  t.equal(restore?.mark, 0x111, "the app's SYN-ACK gets mark 0x111 from it")
  const back = toApp.find((s) => !isSyn(s) && s.hook === 'prerouting')
  t.equal(back?.mark, 0x111, 'and comes back in (prerouting, through lo) with it')
  t.match(report.routing.reviews, [/fwmark 0x111\/0xfff lookup 100/, /table 100: local default dev lo/])
  const client = report.request.client.split(':')[0]
  t.ok(
    report.routing.reviews!.some((l) => l.startsWith(`ip route get ${client} mark 0x111: local ${client} dev lo table 100`)),
    'the kernel routes a reply marked 0x111 to the caller locally, by table 100',
  )
  t.ok(
    report.conntrack.some((e) => e.pod === 'reviews' && e.line.includes(`src=${client}`) && / mark=273 /.test(e.line)),
    "conntrack holds ct mark 0x111 (273) on the ztunnel's connection to the app",
  )
  t.equal(report.answers.reply.yes, true)

  // HBONE: productpage's hop names the app's own destination (SO_ORIGINAL_DST), not the peer's 15008 it tunnels to;
  // reviews' hop on 15008 takes its target from the CONNECT; between the pods only TLS to 15008
  const [out, inb] = hops
  t.same(out!.ztunnel!.originalDst, { address: '198.18.0.20', port: 9080, family: 4 }, 'outbound: the original destination is the app')
  t.match(out!.note, 'original destination 198.18.0.20:9080 (SO_ORIGINAL_DST), an HBONE workload in its table')
  t.match(out!.note, 'as an HTTP/2 CONNECT to 198.18.0.20:9080 over mutual TLS')
  t.match(inb!.note, "an HBONE tunnel from spiffe://cluster.local/ns/default/sa/productpage, over mutual TLS; the CONNECT's :authority")
  t.notMatch(inb!.note, 'SO_ORIGINAL_DST;', 'the inbound hop on 15008 claims no SO_ORIGINAL_DST')
  t.equal(report.answers.wire.yes, false, 'the request crossed the wire only as TLS to 15008')
  const arrival = report.steps.filter((s) => report.answers.wire.steps.includes(s.n))
  t.ok(
    arrival.length > 0 && arrival.every((s) => s.pod === 'reviews' && s.hook === 'prerouting' && s.rewritten === null),
    "the wire answer's steps: the SYN to 15008 through reviews' nat PREROUTING, unredirected",
  )
})

t.test('ambient trace as text, and --walkthrough skipped with a line saying why', rootOnly(), async (t) => {
  const r = await cli(['trace', '--lab', ambientLab, '--walkthrough'])
  t.equal(r.code, 0, r.stderr)
  // wrapped at 80 columns (no terminal): read as one line
  const flat = r.stdout.replace(/\s+/g, ' ')
  t.match(flat, /^--walkthrough: lab \S+ is in ambient mode\. The walkthrough's 15 steps tell sidecar mode's story/)
  t.match(flat, /-> not taken \[mark 0x539, ct mark 0x0\]/)
  t.match(flat, /owned by the ztunnel \(pid \d+\) running in \S+-net, the node/)
  t.ok(
    r.stdout.split('\n').every((l) => l.length <= 80),
    'wrapped to 80 columns',
  )
  const svg = await cli(['trace', '--lab', ambientLab, '--svg', '/dev/null'])
  t.equal(svg.code, 2)
  t.match(svg.stderr, /--svg: the diagram is drawn for sidecar labs only/)
})

t.test('--compare: the same request in a sidecar lab and an ambient lab, counted', rootOnly(), async (t) => {
  const r = await cli(['trace', '--lab', sidecarLab, '--compare', ambientLab, '--json'])
  t.equal(r.code, 0, r.stderr)
  type Counts = { lab: string; processes: string[]; connections: number; rules: number; natRewrites: number; userSpaceHops: number }
  const { sidecar, ambient } = JSON.parse(r.stdout) as { sidecar: Counts; ambient: Counts }
  t.equal(sidecar.lab, sidecarLab)
  t.equal(ambient.lab, ambientLab)
  t.same(sidecar.processes, ['curl', 'sidecar in productpage', 'sidecar in reviews', 'app in reviews'])
  t.same(ambient.processes, ['curl', `ztunnel (pid ${readState(ambientLab)!.ambient!.ztunnel})`, 'app in reviews'])
  t.same([sidecar.connections, ambient.connections], [3, 3], 'three TCP connections in both: each proxy terminates TCP')
  t.same([sidecar.userSpaceHops, ambient.userSpaceHops], [2, 2], 'two relays in both; one process makes both in ambient mode')
  // HBONE between the mesh pods arrives on the callee's 15008, which the in-pod rules do not redirect
  t.same([sidecar.natRewrites, ambient.natRewrites], [2, 1], 'one REDIRECT out of the caller in both; into the callee in sidecar mode only')
  t.ok(
    sidecar.rules > 0 && ambient.rules > sidecar.rules,
    `rules walked: ${sidecar.rules} vs ${ambient.rules} (ambient's mangle rules see every packet)`,
  )

  // either order; the table puts sidecar mode first
  const text = await cli(['trace', '--lab', ambientLab, '--compare', sidecarLab])
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, new RegExp(`sidecar \\(lab ${sidecarLab}\\) +ambient \\(lab ${ambientLab}\\)`))
  t.match(text.stdout, /processes in the path +4 +3\n/)

  const two = await cli(['trace', '--lab', sidecarLab, '--compare', sidecarLab])
  t.equal(two.code, 2)
  t.match(two.stderr, /--compare: give it the other lab/)
  const gone = await cli(['trace', '--lab', sidecarLab, '--compare', 'no-such-lab'])
  t.not(gone.code, 0)
  t.match(gone.stderr, /lab no-such-lab is not up/)
})
