// Slow-loris on the DNS proxy's TCP port: connections that send a frame one byte at a time. The idle timer
// used to restart on every byte, so 256 of them held every slot indefinitely and a normal `dig +tcp` was
// reset. A frame must now complete within its deadline, idle time counts from the last query or reply (not
// the last byte), and when every slot is taken the connection idle the longest gives way to a new one.
// The limits are small here so the test need not wait the defaults' seconds; the mechanism is the same.
import { createSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { parseRegistryEntry } from '../../src/registry/registry.js'
import type { Stats } from '../../src/stats/stats.js'
import { addresses, dig, query, sendRaw, queryPacket, startDnsServer } from '../helpers/dns.js'
import { until } from '../helpers/faults.js'

const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']
const registry = ['default/reviews=198.18.0.20'].map((e) => parseRegistryEntry(e, 'test'))

interface Loris {
  socket: Socket
  closed: boolean
}

/** A connection that announces a 100-byte frame and then sends one byte of it every everyMs. */
async function loris(t: Test, port: number, everyMs: number): Promise<Loris> {
  const socket = connect(port, '127.0.0.1')
  const l: Loris = { socket, closed: false }
  socket.on('error', () => {})
  socket.on('close', () => {
    l.closed = true
    clearInterval(timer)
  })
  const timer = setInterval(() => socket.writable && socket.write(Buffer.from([0x41])), everyMs)
  t.teardown(() => (clearInterval(timer), socket.destroy()))
  await new Promise((r) => socket.once('connect', r))
  socket.write(Buffer.from([0, 100]))
  return l
}

const count = (stats: Stats, name: string) => () => stats.counter(name).value

t.test('all slots held by slow senders: the oldest idle one gives way and dig +tcp is answered', async (t) => {
  const { port, stats } = await startDnsServer(t, { search, maxTcpConnections: 8, tcpIdleMs: 60_000, tcpFrameMs: 60_000 }, registry)
  const slow: Loris[] = []
  for (let i = 0; i < 8; i++) slow.push(await loris(t, port, 100))
  await until('8 connections accepted', () => count(stats, 'dns.tcp_connections')() === 8, 5000)
  const d = await dig(port, ['+tcp', '+noall', '+answer', 'reviews.default.svc.cluster.local'])
  t.equal(d.code, 0, `dig +tcp succeeded (${d.out.trim()})`)
  t.match(d.out, /198\.18\.0\.20/, 'and got the table answer')
  await until('the oldest slow connection is closed', () => slow[0]!.closed, 5000)
  t.same(
    slow.map((l) => l.closed),
    [true, false, false, false, false, false, false, false],
    'only the oldest gave way',
  )
  t.equal(count(stats, 'dns.tcp_evicted')(), 1, 'counted in dns.tcp_evicted')
  t.equal(count(stats, 'dns.tcp_overflow')(), 0, 'no connection was refused')
})

t.test('a frame sent one byte at a time is cut at the frame deadline; a frame sent in pieces in time is answered', async (t) => {
  const { port, stats } = await startDnsServer(t, { search, tcpIdleMs: 60_000, tcpFrameMs: 300 }, registry)
  const slow: Loris[] = []
  for (let i = 0; i < 4; i++) slow.push(await loris(t, port, 50))
  await until(
    'every slow sender closed',
    () => slow.every((l) => l.closed),
    5000,
    () => slow.map((l) => l.closed),
  )
  t.equal(count(stats, 'dns.tcp_frame_timeout')(), 4, 'counted in dns.tcp_frame_timeout')
  // a query in two writes, 20 ms apart: within the deadline
  const c = connect(port, '127.0.0.1')
  t.teardown(() => c.destroy())
  const q = queryPacket({ name: 'reviews', id: 9 })
  const head = Buffer.from([0, q.length])
  const reply = new Promise<Buffer>((resolve) => {
    let buf = Buffer.alloc(0)
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) resolve(buf.subarray(2))
    })
  })
  c.write(Buffer.concat([head, q.subarray(0, 5)]))
  setTimeout(() => c.write(q.subarray(5)), 20)
  t.equal((await reply).readUInt16BE(0), 9, 'answered')
  t.same(addresses(await query('tcp', port, { name: 'reviews' })), ['198.18.0.20'], 'the port still answers')
})

t.test('idle time counts from the last query or reply, not the last byte', async (t) => {
  const { port, stats } = await startDnsServer(t, { search, tcpIdleMs: 400, tcpFrameMs: 60_000 }, registry)
  const l = await loris(t, port, 50)
  await until('the byte-dribbling connection is closed as idle', () => l.closed, 5000)
  t.equal(count(stats, 'dns.tcp_idle_timeout')(), 1, 'counted in dns.tcp_idle_timeout')
  t.equal(count(stats, 'dns.tcp_frame_timeout')(), 0)
  const r = await sendRaw('tcp', port, queryPacket({ name: 'reviews', id: 3 }))
  t.equal(r.readUInt16BE(0), 3, 'a normal query is still answered')
})

t.test('with every slot busy (queries in flight), a new connection is refused and counted', async (t) => {
  const silent = createSocket('udp4')
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r))
  t.teardown(() => silent.close())
  const upstreams = [{ address: '127.0.0.1', port: silent.address().port }]
  const { port, stats } = await startDnsServer(t, { search, upstreams, timeoutMs: 5000, maxTcpConnections: 2 }, registry)
  // their answers (SERVFAIL after 5 s) are not awaited: the teardown closes the server and them
  for (let i = 0; i < 2; i++) void sendRaw('tcp', port, queryPacket({ name: 'db.lab.test' }), 8000).catch(() => {})
  await until('two queries forwarded', () => count(stats, 'dns.forwarded')() === 2, 5000)
  await t.rejects(query('tcp', port, { name: 'reviews' }, 2000), 'the third connection is closed')
  t.equal(count(stats, 'dns.tcp_overflow')(), 1, 'counted in dns.tcp_overflow')
  t.equal(count(stats, 'dns.tcp_evicted')(), 0, 'no busy connection was evicted')
})
