// Step assembly and the two answers, from a real run's captured output.
import t from 'tap'
import { formatEndpoint as fmt, parseEndpoint } from '../../../src/net/address.js'
import { appendsByChain, handlesByChain, parseAccessLine, parseConntrack } from '../../../src/trace/capture/evidence.js'
import { fixture, fixtureReport } from '../fixture.js'

t.test("three connections: the app's, the outbound sidecar's and the inbound sidecar's", async (t) => {
  const r = fixtureReport()
  t.same(
    r.connections.map((c) => [c.role, c.pod, fmt(c.client), fmt(c.server)]),
    [
      ['app', 'productpage', '198.18.0.10:35784', '198.18.0.20:9080'],
      ['outbound sidecar', 'productpage', '198.18.0.10:35798', '198.18.0.20:9080'],
      ['inbound sidecar', 'reviews', '127.0.0.6:43585', '198.18.0.20:9080'],
    ],
  )
})

t.test('the hops the walkthrough names, in order, numbered from 1', async (t) => {
  const r = fixtureReport()
  t.same(
    r.steps.map((s) => s.n),
    r.steps.map((_, i) => i + 1),
  )
  const path = r.steps.filter((s) => s.chain && !s.rule?.startsWith('policy')).map((s) => `${s.pod} ${s.chain} ${s.verdict}`)
  t.same(path, [
    'productpage OUTPUT jump ISTIO_OUTPUT',
    'productpage ISTIO_OUTPUT jump ISTIO_REDIRECT',
    'productpage ISTIO_REDIRECT accept',
    'productpage OUTPUT jump ISTIO_OUTPUT',
    'productpage ISTIO_OUTPUT return',
    'reviews PREROUTING jump ISTIO_INBOUND',
    'reviews ISTIO_INBOUND jump ISTIO_IN_REDIRECT',
    'reviews ISTIO_IN_REDIRECT accept',
    'reviews OUTPUT jump ISTIO_OUTPUT',
    'reviews ISTIO_OUTPUT return',
  ])
  const redirect = r.steps.find((s) => s.chain === 'ISTIO_REDIRECT')!
  t.equal(redirect.iptables, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001')
  t.same(redirect.rewritten, { src: parseEndpoint('198.18.0.10:35784'), dst: parseEndpoint('127.0.0.1:15001') })
})

t.test('each sidecar step sits between the connection it accepted and the one it opened', async (t) => {
  const r = fixtureReport()
  const sidecars = r.steps.filter((s) => s.kind === 'sidecar')
  t.same(
    sidecars.map((s) => [s.pod, s.connection]),
    [
      ['productpage', 0],
      ['reviews', 1],
    ],
  )
  t.match(
    sidecars[0]!.note,
    /on 127\.0\.0\.1:15001; original destination 198\.18\.0\.20:9080 .* opened 198\.18\.0\.10:35798 -> 198\.18\.0\.20:9080/,
  )
  t.match(sidecars[1]!.note, /on 198\.18\.0\.20:15006; .*opened 127\.0\.0\.6:43585/)
  const before = r.steps.filter((s) => s.n < sidecars[0]!.n)
  t.ok(before.every((s) => s.connection === 0))
})

t.test("steps carry their addresses and reasons as fields: the sidecar's accept, conntrack's un-NAT, the walkthrough step", async (t) => {
  const r = fixtureReport()
  const accept = r.steps.find((s) => s.kind === 'sidecar' && s.pod === 'reviews')!.accept!
  t.same(
    [
      fmt(accept.peer),
      fmt(accept.listener),
      fmt(accept.originalDst),
      fmt(accept.opened.src),
      fmt(accept.opened.dst),
      accept.destinationSource,
      accept.cluster,
    ],
    [
      '198.18.0.10:35798',
      '198.18.0.20:15006',
      '198.18.0.20:9080',
      '127.0.0.6:43585',
      '198.18.0.20:9080',
      'SO_ORIGINAL_DST',
      'InboundPassthroughClusterIpv4',
    ],
  )
  const unNat = r.steps.find((s) => s.unNat)!
  t.same([unNat.noChain, fmt(unNat.unNat!.from), fmt(unNat.unNat!.to)], ['reply', '127.0.0.1:15001', '198.18.0.20:9080'])
  t.match(unNat.note, `turns ${fmt(unNat.unNat!.from)} back into ${fmt(unNat.unNat!.to)}`, 'the note says what the fields hold')
  t.ok(
    r.steps.every((s) => (s.kind === 'sidecar') === (s.accept !== null)),
    'accept on sidecar steps only',
  )
  t.ok(
    r.steps.filter((s) => s.kind === 'netfilter').every((s) => (s.chain === null) === (s.noChain !== null)),
    'a reason on exactly the packets no chain saw',
  )
  t.same(
    r.steps.slice(0, 3).map((s) => s.walk),
    [1, 1, 1],
  )
})

t.test('step 16 does not loop: the RETURN rules, and replies never in a nat chain', async (t) => {
  const { loop } = fixtureReport().answers
  t.equal(loop.loops, false)
  t.same(
    loop.returns.map((r) => [r.pod, r.iptables]),
    [
      ['productpage', '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN'],
      ['reviews', '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN'],
    ],
  )
  t.equal(loop.repliesSkipNat, true)
  t.equal(loop.replySteps.length, 6)
})

t.test("a new connection: two 4-tuples, the app's NATed to 15001, the sidecar's not", async (t) => {
  const { newConnection } = fixtureReport().answers
  t.equal(newConnection.newConnection, true)
  const pp = newConnection.tuples.filter((x) => x.pod === 'productpage')
  t.same(
    pp.map((x) => [x.client, x.natTo]),
    [
      ['198.18.0.10:35784', '127.0.0.1:15001'],
      ['198.18.0.10:35798', null],
    ],
  )
  const rv = newConnection.tuples.filter((x) => x.pod === 'reviews')
  t.same(
    rv.map((x) => [x.client, x.natTo]),
    [
      ['198.18.0.10:35798', '198.18.0.20:15006'],
      ['127.0.0.6:43585', null],
    ],
  )
})

t.test('evidence parsers: access log text and JSON, conntrack, nat listings', async (t) => {
  const line = parseAccessLine('reviews', fixture('reviews.access.log').trim())!
  t.same(
    [fmt(line.upstreamLocal), fmt(line.downstreamLocal), fmt(line.downstreamRemote), line.cluster],
    ['127.0.0.6:43585', '198.18.0.20:9080', '198.18.0.10:35798', 'InboundPassthroughClusterIpv4'],
  )
  const json = parseAccessLine(
    'p',
    JSON.stringify({
      upstream_local_address: '1.1.1.1:5',
      downstream_local_address: '2.2.2.2:9080',
      downstream_remote_address: '3.3.3.3:7',
      upstream_cluster: 'c',
      upstream_host: '2.2.2.2:9080',
    }),
  )
  t.same(json?.downstreamRemote, { address: '3.3.3.3', port: 7, family: 4 })
  const v6 = parseAccessLine(
    'p',
    JSON.stringify({
      upstream_local_address: '[2001:2::20]:40000',
      downstream_local_address: '[2001:2::20]:9080',
      downstream_remote_address: '[::ffff:198.18.0.10]:7',
      upstream_cluster: 'c',
      upstream_host: null,
    }),
  )
  t.same(
    [v6?.upstreamLocal, v6?.downstreamRemote, v6?.upstreamHost],
    [{ address: '2001:2::20', port: 40000, family: 6 }, { address: '198.18.0.10', port: 7, family: 4 }, null],
    'IPv6 in brackets, a mapped peer made plain, no upstream as null',
  )
  t.equal(
    parseAccessLine(
      'p',
      '[2024-01-01T00:00:00.000Z] "- - -" 0 - - - "-" 1 1 1 - "-" "-" "-" "-" "1.1.1.1:80" c 2001:2::1:5 1.1.1.1:80 3.3.3.3:7 - -',
    ),
    undefined,
    'an unbracketed IPv6 address: not a line of ours, skipped',
  )
  const ct = parseConntrack(
    'x',
    'tcp      6 119 TIME_WAIT src=198.18.0.10 dst=198.18.0.20 sport=1 dport=9080 src=127.0.0.1 dst=198.18.0.10 sport=15001 dport=1 [ASSURED] mark=0 use=1',
  )
  t.same([ct[0]!.state, ct[0]!.nated, ct[0]!.reply.sport], ['TIME_WAIT', true, 15001])
  t.same(handlesByChain(fixture('productpage.nft-nat.txt')).get('ISTIO_REDIRECT'), [6])
  t.equal(appendsByChain(fixture('productpage.iptables-nat.txt')).get('ISTIO_OUTPUT')?.length, 9)
})
