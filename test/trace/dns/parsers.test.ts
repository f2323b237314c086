// trace --dns's parsers on a real run's captures (test/fixtures/trace/dns: `trace --dns --raw` of a legacy
// lab, app port 28819, the sidecar's upstream port 37629): the hops and their roles, the rewrite to 15053,
// conntrack's zones, dig's answer and dnsmasq's query log.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseUdpConntrack, readServerQueries, counterDelta } from '../../../src/trace/dns/evidence.js'
import { dnsHops } from '../../../src/trace/dns/hops.js'
import { parseDig, sidecarUpstreamEntries, type DnsRun } from '../../../src/trace/dns/run.js'
import { ownTable } from '../../../src/trace/capture/nft-table.js'
import { parseTrace, traversals } from '../../../src/trace/capture/parse.js'
import { renderDnsJson, renderDnsText } from '../../../src/trace/dns/render.js'
import { answer, type DnsTraceReport } from '../../../src/trace/dns/report.js'
import { terminalWidth } from '../../../src/text/wrap.js'
import { PassThrough } from 'node:stream'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const fixture = (f: string) => readFileSync(new URL(`../../fixtures/trace/dns/${f}`, import.meta.url), 'utf8')

t.test('the hops of a forwarded lookup, in order, with their roles and rules', async (t) => {
  const hops = dnsHops(traversals('productpage', parseTrace(fixture('productpage.dns.nft-monitor.txt')), ownTable), 28819, new Map())
  t.same(
    hops.map((h) => h.role),
    [
      "app's query",
      "app's query arriving at the sidecar",
      "sidecar's upstream query",
      "the DNS server's reply to the sidecar",
      "sidecar's answer to the app",
      'the answer arriving at the app (through lo)',
    ],
  )
  t.same(hops[0]!.rewritten, { src: '198.18.0.10:28819', dst: '127.0.0.1:15053' }, 'REDIRECT to 15053')
  t.match(
    hops[0]!.hits.map((h) => `${h.table} ${h.chain} ${h.rule}`),
    ['raw OUTPUT udp dport 53 xt target CT', /raw OUTPUT/, 'nat OUTPUT udp dport 53 redirect to :15053'],
  )
  t.match(
    hops[2]!.hits.map((h) => h.rule ?? 'policy'),
    [
      'udp dport 53 skuid 1337 xt target CT',
      'udp dport 53 skgid 1337 xt target CT',
      'udp dport 53 xt target CT',
      'policy',
      'udp dport 53 skuid 1337 return',
      'policy',
    ],
  )
  t.equal(hops[2]!.packet.src, '198.18.0.10:37629')
  t.same(
    hops.flatMap((h) => h.hits.map((x) => x.step)),
    hops.flatMap((h) => h.hits).map((_, i) => i + 1),
    'steps numbered through',
  )
})

t.test("conntrack: the two flows with their zones; the sidecar's is the one not NATed", async (t) => {
  const entries = parseUdpConntrack(fixture('productpage.conntrack.txt'))
  t.same(
    entries.map((e) => [e.zone, e.original.sport, e.nated]),
    [
      [2, 28819, true],
      [1, 37629, false],
    ],
  )
  t.same(
    sidecarUpstreamEntries(entries, 28819).map((e) => e.original.sport),
    [37629],
  )
})

t.test("dig's answer, the counters' change and dnsmasq's log", async (t) => {
  const dig = parseDig(
    ';; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; ANSWER SECTION:\ndb.lab.test.\t\t10\tIN\tA\t198.18.0.30\n\n;; SERVER: 198.18.0.53#53(198.18.0.53) (UDP)\n',
  )
  t.same(dig, {
    status: 'NOERROR',
    answers: [{ name: 'db.lab.test.', ttl: 10, type: 'A', data: '198.18.0.30' }],
    server: '198.18.0.53#53(198.18.0.53)',
  })
  t.same(counterDelta({ requests: 4, forwarded: 1 }, { requests: 5, forwarded: 2, nxdomain: 0 }), { requests: 1, forwarded: 1 })
  const dir = mkdtempSync(join(tmpdir(), 'slt-dns-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'dnsmasq.log')
  writeFileSync(
    file,
    'dnsmasq[1]: 7 198.18.0.10/37629 query[A] db.lab.test from 198.18.0.10\ndnsmasq[1]: 7 198.18.0.10/37629 config db.lab.test is 198.18.0.30\n',
  )
  t.same(readServerQueries(file, 0), [{ client: '198.18.0.10', port: 37629, type: 'A', name: 'db.lab.test' }])
})

t.test('the text report fits 80 columns when not on a terminal; the JSON keeps the answer whole', async (t) => {
  const hops = dnsHops(traversals('productpage', parseTrace(fixture('productpage.dns.nft-monitor.txt')), ownTable), 28819, new Map())
  const entries = parseUdpConntrack(fixture('productpage.conntrack.txt'))
  const run: DnsRun = {
    name: 'db.lab.test',
    client: '198.18.0.10',
    dig: { status: 'NOERROR', answers: [{ name: 'db.lab.test.', ttl: 10, type: 'A', data: '198.18.0.30' }], server: '198.18.0.53' },
    hops,
    sidecar: { requests: 1, forwarded: 1 },
    answeredBy: 'sidecar forward',
    sidecarUpstreamPort: 37629,
    conntrack: entries,
    serverQueries: [{ client: '198.18.0.10', port: 37629, type: 'A', name: 'db.lab.test' }],
    raw: '',
  }
  const probe = { port: 37629, run, bypassed: false }
  const report: DnsTraceReport = {
    lab: 'slt-dns',
    rules: 'legacy',
    lookup: run,
    probe,
    withoutZones: null,
    answer: answer(probe, null),
  }
  const text = renderDnsText(report, terminalWidth(new PassThrough()))
  const wide = text.split('\n').filter((l) => l.length > 80)
  t.same(wide, [], 'no line wider than 80')
  t.match(text.replace(/\n +/g, ' '), report.answer.answer, 'the answer is all there, wrapped')
  t.equal((JSON.parse(renderDnsJson(report)) as DnsTraceReport).answer.answer, report.answer.answer)
})
