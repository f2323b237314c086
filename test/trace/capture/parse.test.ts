// The parser on real `nft -a monitor` output captured in the lab's two pods.
import t from 'tap'
import { ownTable, traceRuleset } from '../../../src/trace/capture/nft-table.js'
import { parseFlags, parseLine, parseTrace, traversals } from '../../../src/trace/capture/parse.js'
import { fixture } from '../fixture.js'

t.test('a rule line: table, chain, rule without counters, handle, verdict', async (t) => {
  const e = parseLine(
    'trace id 2bf15686 ip nat ISTIO_OUTPUT rule skuid 1337 counter packets 1 bytes 60 return # handle 19 (verdict return)',
  )
  t.same(e, {
    id: '2bf15686',
    family: 'ip',
    table: 'nat',
    chain: 'ISTIO_OUTPUT',
    kind: 'rule',
    verdict: 'return',
    rule: 'skuid 1337 return',
    handle: 19,
  })
})

t.test('a rule nft did not have in its cache prints as "unknown rule handle N"', async (t) => {
  const e = parseLine('trace id 9cfd1092 inet sidecar_lab_trace out unknown rule handle 8 (verdict continue)')
  t.equal(e?.rule, undefined)
  t.equal(e?.handle, 8)
  t.equal(e?.verdict, 'continue')
})

t.test('a packet line: 4-tuple, interface and flags; SYN-ACK is printed as hex', async (t) => {
  const e = parseLine(
    'trace id 3e51d6c2 inet sidecar_lab_trace out packet: oif "lo" ip saddr 127.0.0.1 ip daddr 198.18.0.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 0 ip protocol tcp ip length 60 tcp sport 15001 tcp dport 57290 tcp flags == 0x12 tcp window 65483 ',
  )
  t.same(e?.packet, {
    family: 'ip',
    saddr: '127.0.0.1',
    daddr: '198.18.0.10',
    sport: 15001,
    dport: 57290,
    flags: ['syn', 'ack'],
    oif: 'lo',
  })
  t.same(parseFlags('syn'), ['syn'])
  t.same(parseFlags('syn | ack'), ['syn', 'ack'])
})

t.test('ruleset events and other lines are not trace events', async (t) => {
  t.equal(parseLine('add table inet sidecar_lab_trace # handle 4'), undefined)
  t.equal(parseLine('# new generation 6 by process 6447 (nft)'), undefined)
})

t.test('productpage: the app SYN goes OUTPUT -> ISTIO_OUTPUT -> ISTIO_REDIRECT and leaves rewritten to 127.0.0.1:15001', async (t) => {
  const list = traversals('productpage', parseTrace(fixture('productpage.nft-monitor.txt')), ownTable)
  t.equal(list.length, 6, 'SYN and SYN-ACK of two connections: 4 hook passes for the looped-back one, 2 for the other')
  const first = list[0]!
  t.equal(first.hook, 'output')
  t.same(
    first.hits.map((h) => [h.chain, h.verdict]),
    [
      ['OUTPUT', 'jump ISTIO_OUTPUT'],
      ['ISTIO_OUTPUT', 'jump ISTIO_REDIRECT'],
      ['ISTIO_REDIRECT', 'accept'],
    ],
  )
  t.same([first.before.daddr, first.before.dport], ['198.18.0.20', 9080])
  t.same([first.after.daddr, first.after.dport], ['127.0.0.1', 15001])
  t.notOk(
    list.some((x) => x.hits.some((h) => h.table === ownTable.name)),
    'the trace table itself is not a hit',
  )
})

t.test('reviews: the SYN from productpage goes PREROUTING -> ISTIO_INBOUND -> ISTIO_IN_REDIRECT -> :15006', async (t) => {
  const list = traversals('reviews', parseTrace(fixture('reviews.nft-monitor.txt')), ownTable)
  const syn = list.find((x) => x.hook === 'prerouting' && x.before.iif === 'eth0')!
  t.same(
    syn.hits.map((h) => h.chain),
    ['PREROUTING', 'ISTIO_INBOUND', 'ISTIO_IN_REDIRECT'],
  )
  t.equal(syn.after.dport, 15006)
  t.same(
    list.filter((x) => x.before.flags.includes('ack')).map((x) => x.hits.length),
    [0, 0, 0],
    'no SYN-ACK enters a nat chain',
  )
})

t.test('the trace table marks SYN and SYN-ACK on the given and the sidecar ports, before conntrack', async (t) => {
  const text = traceRuleset([9080, 15001, 15006, 9080])
  t.match(text, /type filter hook prerouting priority -350;/)
  t.match(text, /type filter hook output priority -350;/)
  t.match(text, /tcp flags & \(syn \| rst\) == syn tcp dport \{ 9080, 15001, 15006 \} meta nftrace set 1/)
  t.match(text, /chain out_after \{\n\s+type filter hook output priority 350;/)
})
