// The ambient report built from the captured output of a real `trace` run in an ambient lab
// (test/fixtures/trace-ambient/: the pods' nft monitor text, the ztunnel's access log lines, the pods' nat and
// mangle listings, conntrack, the reply routing), so the path's reading is checked without root; and the
// counts of trace --compare against the sidecar lab's recorded run (test/fixtures/trace-call/).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { iptablesByHandle, parseConntrack } from '../../src/trace/capture/evidence.js'
import { markOf } from '../../src/trace/capture/parse.js'
import { ambientCounts, sidecarCounts } from '../../src/trace/ambient/compare.js'
import { parseZtunnelLine, parseZtunnelLog } from '../../src/trace/ambient/evidence.js'
import { renderAmbientText } from '../../src/trace/ambient/render.js'
import { buildAmbientReport, type AmbientReport } from '../../src/trace/ambient/report.js'
import { fixtureReport } from './fixture.js'

const dir = fileURLToPath(new URL('../fixtures/trace-ambient/', import.meta.url))
const read = (name: string) => readFileSync(dir + name, 'utf8')

function report(): AmbientReport {
  const run = JSON.parse(read('run.json')) as {
    lab: string
    request: AmbientReport['request']
    ztunnel: { pid: number; ns: string }
    routing: Record<string, string[]>
  }
  const pods = ['productpage', 'reviews']
  const iptables = new Map<string, string>()
  for (const p of pods)
    for (const table of ['nat', 'mangle'])
      for (const [h, rule] of iptablesByHandle(read(`${p}.nft-${table}.txt`), read(`${p}.iptables-${table}.txt`)))
        iptables.set(`${p} ip ${table} ${h}`, rule)
  return buildAmbientReport({
    lab: run.lab,
    request: run.request,
    raw: Object.fromEntries(pods.map((p) => [p, read(`${p}.nft-monitor.txt`)])),
    ztunnel: { ...run.ztunnel, lines: parseZtunnelLog(read('ztunnel-access.log')) },
    pods: {
      productpage: { ns: `${run.lab}-productpage`, ip: '198.18.0.10', ip6: '2001:2::10', app: 101 },
      reviews: { ns: `${run.lab}-reviews`, ip: '198.18.0.20', ip6: '2001:2::20', app: 102 },
      ratings: { ns: `${run.lab}-ratings`, ip: '198.18.0.30', ip6: '2001:2::30', app: 103 },
    },
    iptables,
    conntrack: pods.flatMap((p) => parseConntrack(p, read(`${p}.conntrack.txt`))),
    routing: run.routing,
  })
}

t.test('the ztunnel access line and the trace mark, parsed', async (t) => {
  const line =
    '2026-12-07T12:28:59.773Z\tinfo\taccess\tconnection complete\tsrc.addr=198.18.0.10:54504 dst.addr=198.18.0.20:9080 ' +
    'dst.workload="reviews" direction="inbound" bytes_sent=80'
  t.same(parseZtunnelLine(line), {
    direction: 'inbound',
    src: { address: '198.18.0.10', port: 54504, family: 4 },
    dst: { address: '198.18.0.20', port: 9080, family: 4 },
  })
  t.equal(parseZtunnelLine(line.replace('connection complete', 'connection opened')), undefined, 'only complete connections')
  t.equal(parseZtunnelLine(line.replace('src.addr=198.18.0.10:54504', 'src.addr=nonsense')), undefined, 'an address that does not parse')
  t.equal(markOf('accept meta mark 0x00000539 '), 0x539)
  t.equal(markOf('accept '), undefined)
})

t.test('the recorded run: connections, owners, marks, the REDIRECT not taken, the reply', async (t) => {
  const r = report()
  t.same(
    r.connections.map((c) => `${c.role} ${c.pod} ${c.owner.process}`),
    [
      'app productpage curl',
      'ztunnel outbound productpage ztunnel',
      'ztunnel inbound reviews ztunnel',
      'app reviews app',
      'ztunnel outbound reviews ztunnel',
    ],
  )
  t.equal(r.connections[3]!.owner.pid, 102, "reviews' own call: its app's pid")
  t.same(
    r.steps.filter((s) => s.kind === 'ztunnel').map((s) => `${s.pod} ${s.ztunnel!.direction} ${s.ztunnel!.listener?.port}`),
    ['productpage outbound 15001', 'reviews inbound 15006', 'reviews outbound 15001'],
  )
  const notTaken = r.steps.filter((s) => s.verdict === 'not taken')
  t.same(
    notTaken.map((s) => [s.connection, s.pod, s.mark, s.iptables]),
    [
      [1, 'productpage', 0x539, '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001'],
      [4, 'reviews', 0x539, '-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001'],
    ],
  )
  t.equal(r.answers.loop.yes, false)
  t.equal(r.answers.reply.yes, true)
  const restore = r.steps.find((s) => s.n === r.answers.reply.steps[1])
  t.match(restore, { pod: 'reviews', chain: 'ISTIO_OUTPUT', mark: 0x111, ctmark: 0x111 }, 'the SYN-ACK marked from its ct mark')
  t.match(restore?.note, /routed to eth0 .*fwmark 0x111 -> table 100/)
  const text = renderAmbientText(r, 100)
  t.ok(
    text.split('\n').every((l) => l.length <= 100),
    'fits 100 columns',
  )
  t.match(
    text.replace(/\s+/g, ' '),
    /ztunnel \(pid 20704, running in slfx-net, the node\) accepted 198\.18\.0\.10:\d+ on 127\.0\.0\.1:15001/,
  )
})

t.test('the counts of --compare: the recorded sidecar run and the recorded ambient run', async (t) => {
  const sidecar = sidecarCounts(fixtureReport('trace-call'))
  const ambient = ambientCounts(report())
  t.same(sidecar.processes, ['curl', 'sidecar in productpage', 'sidecar in reviews', 'app in reviews'])
  t.same(ambient.processes, ['curl', 'ztunnel (pid 20704)', 'app in reviews'])
  t.same(
    [sidecar.connections, sidecar.natRewrites, sidecar.userSpaceHops, ambient.connections, ambient.natRewrites, ambient.userSpaceHops],
    [3, 2, 2, 3, 2, 2],
  )
  t.ok(ambient.rules > sidecar.rules, `rules walked ${sidecar.rules} vs ${ambient.rules}`)
})
