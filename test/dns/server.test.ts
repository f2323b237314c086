// The DNS proxy on real loopback sockets, with a real dnsmasq as its upstream: names from the table under
// every search-list form, forwarding (UDP, TCP retry on truncation), SERVFAIL, bad input, TCP pipelining.
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import dnsPacket from 'dns-packet'
import t, { type Test } from 'tap'
import { defaultDnsConfig, type DnsConfig } from '../../src/dns/config.js'
import { DnsServer } from '../../src/dns/server.js'
import { parseRegistryEntry } from '../../src/registry/registry.js'
import { Stats } from '../../src/stats/stats.js'
import { addresses, freePort, query, queryPacket, sendRaw, startDnsServer, startDnsmasq } from '../helpers/dns.js'

const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']
const registry = [
  'default/reviews=198.18.0.20:9080',
  'default/reviews=[2001:2::20]:9080',
  'default/ratings=198.18.0.30',
  'other/details=198.18.0.40',
  '198.18.0.0/24',
].map((e) => parseRegistryEntry(e, 'test'))

function server(t: Test, config: Partial<DnsConfig>): Promise<{ dns: DnsServer; port: number; stats: Stats }> {
  return startDnsServer(t, { search, ...config }, registry)
}

async function withDnsmasq(t: Test, extra: Partial<DnsConfig> = {}) {
  const up = await freePort()
  const big = ['a', 'b', 'c'].map((c) => c.repeat(250)).join(',')
  await startDnsmasq(t, up, ['--local=/lab.test/', '--address=/db.lab.test/198.18.0.99', `--txt-record=big.lab.test,${big}`])
  return server(t, { upstreams: [{ address: '127.0.0.1', port: up }], ...extra })
}

for (const proto of ['udp', 'tcp'] as const) {
  t.test(`${proto}: every form of a service name the search list produces answers from the table, TTL 30`, async (t) => {
    const { port, stats } = await withDnsmasq(t)
    for (const name of [
      'reviews',
      'reviews.default',
      'reviews.default.svc',
      'reviews.default.svc.cluster.local',
      'REVIEWS.default.svc.cluster.local.',
    ]) {
      const r = await query(proto, port, { name })
      t.equal(r.rcode, 'NOERROR', name)
      t.ok(r.flag_aa, `${name}: authoritative`)
      t.same(addresses(r), ['198.18.0.20'], name)
      t.equal(r.answers![0]!.ttl, 30, `${name}: TTL`)
    }
    t.same(addresses(await query(proto, port, { name: 'reviews', type: 'AAAA' }), 'AAAA'), ['2001:2::20'])
    t.equal(stats.counter('dns.answered_from_table').value, 6)
    t.equal(stats.counter('dns.forwarded').value, 0)
  })

  t.test(`${proto}: a known name without a record of the type is NOERROR with no data, not NXDOMAIN`, async (t) => {
    const { port } = await withDnsmasq(t)
    for (const type of ['AAAA', 'MX', 'TXT']) {
      const r = await query(proto, port, { name: 'ratings.default.svc.cluster.local', type })
      t.equal(r.rcode, 'NOERROR', type)
      t.same(r.answers, [], type)
    }
  })

  t.test(`${proto}: a search suffix appended to a known name gets a CNAME to the real name`, async (t) => {
    const { port } = await withDnsmasq(t)
    const r = await query(proto, port, { name: 'reviews.default.default.svc.cluster.local' })
    t.match(r.answers, [
      { type: 'CNAME', name: 'reviews.default.default.svc.cluster.local', data: 'reviews.default.svc.cluster.local' },
      { type: 'A', name: 'reviews.default.svc.cluster.local', data: '198.18.0.20' },
    ])
  })

  t.test(`${proto}: names outside the table are forwarded to the upstream`, async (t) => {
    const { port, stats } = await withDnsmasq(t)
    t.same(addresses(await query(proto, port, { name: 'db.lab.test' })), ['198.18.0.99'])
    t.equal((await query(proto, port, { name: 'nosuch.lab.test' })).rcode, 'NXDOMAIN')
    // short names only for the proxy's own namespace: `details` lives in `other`
    t.equal((await query(proto, port, { name: 'details.lab.test' })).rcode, 'NXDOMAIN')
    t.same(addresses(await query(proto, port, { name: 'details.other' })), ['198.18.0.40'])
    t.equal(stats.counter('dns.forwarded').value, 3)
    t.equal(stats.counter('dns.nxdomain').value, 2)
  })
}

t.test('a truncated upstream answer is asked again over TCP; a UDP client without EDNS gets TC and retries', async (t) => {
  const { port, dns } = await withDnsmasq(t)
  const overTcp = await query('tcp', port, { name: 'big.lab.test', type: 'TXT' })
  t.equal(overTcp.flag_tc, false)
  t.equal(overTcp.answers!.length, 1)
  t.same(
    (overTcp.answers![0]!.data as Buffer[]).map((b) => b.length),
    [250, 250, 250],
  )
  const overUdp = await query('udp', port, { name: 'big.lab.test', type: 'TXT' })
  t.equal(overUdp.flag_tc, true, 'too big for 512 bytes: TC set')
  t.same(overUdp.answers, [])
  t.match(dns.metrics.prometheus(''), /dns_upstream_requests_total 2\n/)
})

t.test('no upstream answering gives SERVFAIL within the timeout, and counts the failure', async (t) => {
  const closed = await freePort()
  const silent = createSocket('udp4')
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r))
  t.teardown(() => silent.close())
  const { port, dns, stats } = await server(t, {
    upstreams: [
      { address: '127.0.0.1', port: closed },
      { address: '127.0.0.1', port: silent.address().port },
    ],
    timeoutMs: 400,
  })
  // the client waits far longer than the proxy's timeout: the SERVFAIL must come from the proxy
  const r = await query('udp', port, { name: 'db.lab.test' }, 4000)
  t.equal(r.rcode, 'SERVFAIL')
  t.equal(stats.counter('dns.servfail').value, 1)
  const text = dns.metrics.prometheus('istio_agent_')
  t.match(text, /istio_agent_dns_upstream_requests_total 2\n/)
  t.match(text, /istio_agent_dns_upstream_failures_total 2\n/)
  t.match(text, /istio_agent_dns_requests_total 1\n/)
  t.match(text, /istio_agent_dns_upstream_request_duration_seconds_count 2\n/)
})

t.test('a reply with the wrong ID or question is dropped and counted; the right one is used', async (t) => {
  const fake = createSocket('udp4')
  await new Promise<void>((r) => fake.bind(0, '127.0.0.1', r))
  t.teardown(() => fake.close())
  fake.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg) as { id: number; questions: { name: string }[] }
    const answer = (id: number, name: string) =>
      dnsPacket.encode({
        type: 'response',
        id,
        flags: 0,
        questions: [{ name, type: 'A', class: 'IN' }],
        answers: [{ type: 'A', name, ttl: 5, data: '198.18.0.77' }],
      })
    fake.send(answer((q.id + 1) % 65536, q.questions![0]!.name), rinfo.port, rinfo.address)
    fake.send(answer(q.id, 'other.lab.test'), rinfo.port, rinfo.address)
    setTimeout(() => fake.send(answer(q.id, q.questions![0]!.name), rinfo.port, rinfo.address), 20)
  })
  const { port, stats } = await server(t, { upstreams: [{ address: '127.0.0.1', port: fake.address().port }] })
  t.same(addresses(await query('udp', port, { name: 'x.lab.test' })), ['198.18.0.77'])
  t.equal(stats.counter('dns.upstream_unmatched_replies').value, 2)
})

t.test('bad input gets FORMERR, NOTIMP or nothing, and the server keeps answering', async (t) => {
  const { port, stats } = await withDnsmasq(t)
  const good = queryPacket({ name: 'reviews', id: 7 })
  const noQuestion = Buffer.from(good.subarray(0, 12))
  noQuestion.writeUInt16BE(0, 4)
  const twoQuestions = dnsPacket.encode({
    type: 'query',
    id: 8,
    questions: [
      { name: 'a', type: 'A' },
      { name: 'b', type: 'A' },
    ],
  })
  const status = Buffer.from(good)
  status.writeUInt16BE(0x1000 | 0x0100, 2) // opcode 2 (STATUS)
  // a name that is a pointer to itself: offset 12 points to 12
  const loop = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])])
  const rcode = (b: Buffer) => b.readUInt16BE(2) & 0xf
  t.equal(rcode(await sendRaw('udp', port, noQuestion)), 1, 'zero questions: FORMERR')
  t.equal(rcode(await sendRaw('udp', port, twoQuestions)), 1, 'two questions: FORMERR')
  t.equal(rcode(await sendRaw('udp', port, status)), 4, 'opcode STATUS: NOTIMP')
  t.equal(rcode(await sendRaw('udp', port, loop)), 1, 'compression loop: FORMERR')
  t.equal(rcode(await sendRaw('tcp', port, loop)), 1, 'compression loop over TCP: FORMERR')
  await t.rejects(sendRaw('udp', port, Buffer.from([1, 2, 3]), 300), /no udp answer/, 'shorter than a header: dropped')
  const response = Buffer.from(good)
  response.writeUInt16BE(0x8100, 2)
  await t.rejects(sendRaw('udp', port, response, 300), /no udp answer/, 'a response: dropped, never answered')
  t.equal(rcode(await sendRaw('udp', port, Buffer.concat([good, Buffer.alloc(5000)]))), 1, 'over 4096 bytes: FORMERR')
  t.same(addresses(await query('udp', port, { name: 'reviews' })), ['198.18.0.20'], 'still answering')
  t.ok(stats.counter('dns.malformed').value >= 4)
})

t.test('TCP: pipelined queries in one write each get their answer; an oversized frame closes the connection', async (t) => {
  const { port, stats } = await withDnsmasq(t)
  const frames = [1, 2, 3].map((id) => {
    const q = queryPacket({ name: id === 2 ? 'db.lab.test' : 'reviews', id })
    const head = Buffer.alloc(2)
    head.writeUInt16BE(q.length)
    return Buffer.concat([head, q])
  })
  const c = connect(port, '127.0.0.1')
  t.teardown(() => c.destroy())
  const got = new Map<number, string[]>()
  await new Promise<void>((resolve) => {
    let buf = Buffer.alloc(0)
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const m = dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)))
        buf = buf.subarray(2 + buf.readUInt16BE(0))
        got.set(m.id!, addresses(m))
        if (got.size === 3) resolve()
      }
    })
    c.write(Buffer.concat(frames))
  })
  t.same(Object.fromEntries(got), { 1: ['198.18.0.20'], 2: ['198.18.0.99'], 3: ['198.18.0.20'] })
  const malformed = stats.counter('dns.malformed').value
  const big = connect(port, '127.0.0.1')
  const ended = new Promise<boolean>((r) => big.on('end', () => r(true)).on('close', () => r(false)))
  big.on('error', () => {})
  big.write(Buffer.from([0xff, 0xff, 0, 0]))
  t.ok(await ended, 'a 65535-byte frame: the server ends the connection (its FIN arrives)')
  t.equal(stats.counter('dns.malformed').value, malformed + 1, 'counted as malformed')
  t.equal(stats.counter('dns.tcp_frame_timeout').value + stats.counter('dns.tcp_idle_timeout').value, 0, 'not by a timer')
  t.same(addresses(await query('tcp', port, { name: 'reviews' })), ['198.18.0.20'], 'still answering')
})

t.test('IPv6 loopback answers too', async (t) => {
  const { port } = await withDnsmasq(t)
  t.same(addresses(await query('udp', port, { name: 'reviews', host: '::1' })), ['198.18.0.20'])
})

t.test('TCP: over the limit the connection idle longest gives way; an idle one is closed', async (t) => {
  const { port, stats } = await withDnsmasq(t, { maxTcpConnections: 2, tcpIdleMs: 300 })
  const open = (): Promise<ReturnType<typeof connect>> =>
    new Promise((resolve) => {
      const c = connect(port, '127.0.0.1', () => resolve(c))
      c.on('error', () => {})
    })
  const closed = (c: ReturnType<typeof connect>) => new Promise<void>((r) => (c.destroyed ? r() : c.on('close', () => r())))
  const a = await open()
  const b = await open()
  const third = await open()
  t.teardown(() => (a.destroy(), b.destroy(), third.destroy()))
  await closed(a)
  t.equal(stats.counter('dns.tcp_evicted').value, 1, 'the oldest idle connection made room for the third')
  t.equal(stats.counter('dns.tcp_overflow').value, 0, 'none was refused (tcp-slowloris.test.ts: refused when all are busy)')
  await closed(b)
  t.ok(stats.counter('dns.tcp_idle_timeout').value >= 1, 'an idle connection is closed after the idle timeout')
})

t.test('at debug level the DNS log has one line per query saying where its answer came from', async (t) => {
  const lines: Record<string, unknown>[] = []
  const { pino } = await import('pino')
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) })
  const up = await freePort()
  await startDnsmasq(t, up, ['--address=/db.lab.test/198.18.0.99'])
  const port = await freePort()
  const dns = new DnsServer(
    { ...defaultDnsConfig, search, port, upstreams: [{ address: '127.0.0.1', port: up }] },
    registry,
    new Stats(),
    log,
  )
  await dns.start()
  t.teardown(() => dns.close())
  await query('udp', port, { name: 'reviews' })
  await query('tcp', port, { name: 'db.lab.test' })
  const queries = lines.filter((l) => l.msg === 'dns query')
  t.match(queries, [
    { proto: 'udp', name: 'reviews', type: 'A', source: 'table', rcode: 0 },
    {
      proto: 'tcp',
      name: 'db.lab.test',
      type: 'A',
      source: 'upstream',
      upstream: `udp:127.0.0.1:${up}`,
      upstreamLocalPort: Number,
      rcode: 0,
    },
  ])
})

t.test('many queries in flight from one socket each get their own answer', { timeout: 30_000 }, async (t) => {
  const { port, stats } = await withDnsmasq(t)
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r))
  t.teardown(() => s.close())
  const want = new Map<number, string>()
  const got = new Map<number, string>()
  let wake = () => {}
  s.on('message', (m) => {
    const r = dnsPacket.decode(m) as { id: number; questions: { name: string }[]; answers: { data: string }[] }
    got.set(r.id, `${r.questions[0]!.name} ${r.answers[0]?.data}`)
    wake()
  })
  // 10 rounds of 50 at once: enough in flight to interleave table answers and forwards, few enough that
  // no socket buffer on loopback drops a datagram (UDP may, and this test is not about that)
  for (let round = 0; round < 10; round++) {
    for (let id = round * 50 + 1; id <= round * 50 + 50; id++) {
      const name = id % 2 ? 'reviews.default.svc.cluster.local' : 'db.lab.test'
      want.set(id, `${name} ${id % 2 ? '198.18.0.20' : '198.18.0.99'}`)
      s.send(queryPacket({ name, id }), port, '127.0.0.1')
    }
    await new Promise<void>((resolve) => {
      wake = () => got.size === want.size && resolve()
      wake()
    })
  }
  t.same(got, want, "500 answers, each with its query's ID and name")
  t.equal(stats.counter('dns.forwarded').value, 250)
})
