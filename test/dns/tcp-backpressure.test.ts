// TCP clients that pipeline queries and never read the replies. Without backpressure the proxy reads on and
// keeps every reply in memory (one such connection took it from 61 MB to 1.42 GB in 40 s, with event-loop
// stalls of 1.5 s). With it, a connection stops being read while its replies wait unwritten, and every
// connection stops being read while too many bytes of replies wait in total; each reply still arrives, in
// full, once the client reads.
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { Stats } from '../../src/stats/stats.js'
import { queryPacket, startDnsServer } from '../helpers/dns.js'
import { until } from '../helpers/faults.js'

/** 500 A records under one name: a 12.5 kB reply to a 27-byte query, so a few thousand outgrow the kernel's buffers. */
const hosts = Array.from({ length: 500 }, (_, i) => ({ address: `198.18.${2 + (i >> 8)}.${i & 255}`, names: ['many.test'] }))

function frames(first: number, n: number): Buffer {
  return Buffer.concat(
    Array.from({ length: n }, (_, i) => {
      const q = queryPacket({ name: 'many.test', id: first + i })
      const head = Buffer.alloc(2)
      head.writeUInt16BE(q.length)
      return Buffer.concat([head, q])
    }),
  )
}

async function open(t: Test, port: number): Promise<Socket> {
  const c = connect(port, '127.0.0.1')
  c.on('error', () => {})
  t.teardown(() => c.destroy())
  await new Promise((r) => c.once('connect', r))
  return c
}

/** Reads frames off c until n replies came; their IDs. */
function replies(c: Socket, n: number): Promise<Set<number>> {
  const ids = new Set<number>()
  let buf: Buffer = Buffer.alloc(0)
  return new Promise((resolve, reject) => {
    c.on('close', () => reject(new Error(`closed after ${ids.size} of ${n} replies`)))
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        ids.add(buf.readUInt16BE(2))
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
      if (ids.size >= n) resolve(ids)
    })
    c.resume()
  })
}

const counters = (stats: Stats) => ({
  read: () => stats.counter('dns.requests').value,
  paused: () => stats.counter('dns.tcp_paused_reading').value,
  buffered: () => stats.gauge('dns.tcp_tx_bytes_buffered').value,
})

t.test('one connection pipelining without reading: reading pauses, its waiting replies stay bounded', async (t) => {
  const { port, stats } = await startDnsServer(t, { hosts })
  const s = counters(stats)
  const n = 2000
  const c = await open(t, port)
  c.pause()
  c.write(frames(1, n))
  await until(
    'the server pauses reading or reads everything',
    () => s.paused() >= 1 || s.read() >= n,
    15_000,
    () => s.read(),
  )
  const read = s.read()
  t.ok(read < n, `the server stopped reading after ${read} of ${n} queries`)
  t.ok(s.buffered() > 0, `replies wait unwritten (${s.buffered()} bytes)`)
  t.ok(s.buffered() <= 64 * 12_600, `at most 64 replies wait for this connection (${s.buffered()} bytes)`)
  // a pause is the absence of reading: give it time to show otherwise
  await sleep(300)
  t.equal(s.read(), read, 'nothing more read while the client reads nothing')
  const ids = await replies(c, n)
  t.equal(ids.size, n, `once the client reads, all ${n} replies arrive`)
  t.equal(s.read(), n, 'and the server read every query')
  await until('nothing left buffered', () => s.buffered() === 0, 5000, s.buffered)
})

t.test('in total: over the byte limit every connection stops being read until the replies drain', async (t) => {
  const { port, stats } = await startDnsServer(t, { hosts, maxTcpBufferedBytes: 100_000 })
  const s = counters(stats)
  const hog = await open(t, port)
  hog.pause()
  hog.write(frames(1, 1000))
  await until('replies over the limit wait', () => s.buffered() >= 100_000, 15_000, s.buffered)
  const pausedBefore = s.paused()
  const polite = await open(t, port)
  const answer = replies(polite, 1)
  polite.write(frames(5000, 1))
  await until('the new connection is paused too', () => s.paused() > pausedBefore, 5000, s.paused)
  t.equal(polite.bytesRead, 0, 'its query waits unread: no reply yet')
  hog.destroy()
  t.same([...(await answer)], [5000], 'once the hog is gone, the waiting query is read and answered')
  await until('nothing left buffered', () => s.buffered() === 0, 5000, s.buffered)
})
