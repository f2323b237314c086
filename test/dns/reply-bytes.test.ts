// Replies the proxy builds itself (table answers, SERVFAIL, NOTIMP, TC) must carry the query's opcode and
// its question section byte for byte, or real resolvers drop them: dig reports "Opcode mismatch" or
// "Question section mismatch" and waits for an answer that never comes. Names are bytes (RFC 2181 11): a
// label may hold any octet, a dot included, so decoding to text and encoding again changes the question.
import t from 'tap'
import { parseRegistryEntry } from '../../src/registry/registry.js'
import { dig, freePort, sendRaw, startDnsServer } from '../helpers/dns.js'

const search = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']
const registry = ['default/reviews=198.18.0.20'].map((e) => parseRegistryEntry(e, 'test'))

/** A query with one question whose labels are given as bytes; opcode in the header's bits 11-14. */
function rawQuery(labels: Buffer[], opts: { id?: number; opcode?: number; type?: number } = {}): { packet: Buffer; question: Buffer } {
  const name = Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), l]), Buffer.from([0])])
  const tail = Buffer.alloc(4)
  tail.writeUInt16BE(opts.type ?? 1, 0) // A
  tail.writeUInt16BE(1, 2) // IN
  const question = Buffer.concat([name, tail])
  const header = Buffer.alloc(12)
  header.writeUInt16BE(opts.id ?? 0x1234, 0)
  header.writeUInt16BE(((opts.opcode ?? 0) << 11) | 0x0100, 2) // RD
  header.writeUInt16BE(1, 4)
  return { packet: Buffer.concat([header, question]), question }
}

const labels = (...parts: (string | Buffer)[]) => parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))

/** The proxy with the table above and an upstream that refuses at once (a closed port): SERVFAIL is ours. */
async function proxy(t: Parameters<typeof startDnsServer>[0]) {
  const closed = await freePort()
  return startDnsServer(t, { search, upstreams: [{ address: '127.0.0.1', port: closed }], timeoutMs: 1000 }, registry)
}

t.test('NOTIMP carries the query opcode (dig: no "Opcode mismatch")', async (t) => {
  const { port } = await proxy(t)
  const d = await dig(port, ['+opcode=notify', 'reviews.default.svc.cluster.local'])
  t.notMatch(d.out, /mismatch/i, 'dig accepted the reply')
  t.match(d.out, /opcode: NOTIFY, status: NOTIMP/)
  t.equal(d.code, 0, 'dig exit code 0')
  for (const proto of ['udp', 'tcp'] as const) {
    const q = rawQuery(labels('reviews', 'default'), { opcode: 2 }) // STATUS
    const r = await sendRaw(proto, port, q.packet)
    t.equal((r.readUInt16BE(2) >> 11) & 0xf, 2, `${proto}: opcode 2 (STATUS) echoed`)
    t.equal(r.readUInt16BE(2) & 0xf, 4, `${proto}: rcode NOTIMP`)
  }
})

t.test('a name with octet 255 gets its question back byte for byte in our SERVFAIL', async (t) => {
  const { port } = await proxy(t)
  const d = await dig(port, ['a\\255b.lab.test'])
  t.notMatch(d.out, /mismatch/i, 'dig accepted the reply')
  t.match(d.out, /status: SERVFAIL/)
  t.match(d.out, /^;a\\255b\.lab\.test\.\s+IN\s+A$/m, 'dig shows the question it asked')
  for (const proto of ['udp', 'tcp'] as const) {
    const q = rawQuery(labels(Buffer.from([0x61, 0xff, 0x62]), 'lab', 'test'), { id: 0x4242 })
    const r = await sendRaw(proto, port, q.packet)
    t.equal(r.readUInt16BE(0), 0x4242, `${proto}: id`)
    t.equal(r.readUInt16BE(4), 1, `${proto}: one question`)
    t.same(r.subarray(12, 12 + q.question.length), q.question, `${proto}: question section byte for byte`)
    t.equal(r.readUInt16BE(2) & 0xf, 2, `${proto}: SERVFAIL`)
  }
})

t.test('a label holding a dot is not the dotted name: no table answer, question kept', async (t) => {
  const { port, stats } = await proxy(t)
  const d = await dig(port, ['reviews\\.default.svc.cluster.local'])
  t.notMatch(d.out, /mismatch/i, 'dig accepted the reply')
  t.notMatch(d.out, /198\.18\.0\.20/, 'not answered with the service reviews.default')
  t.match(d.out, /^;reviews\\\.default\.svc\.cluster\.local\.\s+IN\s+A$/m, 'dig shows the question it asked')
  const q = rawQuery(labels('reviews.default', 'svc', 'cluster', 'local'))
  const r = await sendRaw('udp', port, q.packet)
  t.same(r.subarray(12, 12 + q.question.length), q.question, 'question section byte for byte')
  t.equal(r.readUInt16BE(6), 0, 'no answer records')
  t.equal(stats.counter('dns.answered_from_table').value, 0, 'the table was not asked for a name it cannot hold')
})

t.test('table answers keep the question as sent (case too) and dig takes them', async (t) => {
  const { port } = await proxy(t)
  const d = await dig(port, ['+noall', '+answer', 'ReViEwS.default.svc.cluster.local'])
  t.equal(d.code, 0)
  t.notMatch(d.out, /mismatch/i)
  t.match(d.out, /^ReViEwS\.default\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+198\.18\.0\.20$/m)
  for (const proto of ['udp', 'tcp'] as const) {
    const q = rawQuery(labels('REVIEWS', 'Default'))
    const r = await sendRaw(proto, port, q.packet)
    t.same(r.subarray(12, 12 + q.question.length), q.question, `${proto}: question byte for byte`)
    t.equal(r.readUInt16BE(6), 1, `${proto}: one answer`)
  }
})

t.test('a question whose name points into the header is FORMERR, not echoed into a reply that changed the header', async (t) => {
  const { port } = await proxy(t)
  const q = rawQuery(labels('reviews'))
  // "reviews" then a pointer to offset 3 (the header's flags byte) instead of the root label
  const packet = Buffer.concat([q.packet.subarray(0, 12 + 8), Buffer.from([0xc0, 3, 0, 1, 0, 1])])
  const r = await sendRaw('udp', port, packet)
  t.equal(r.readUInt16BE(2) & 0xf, 1, 'FORMERR')
  t.equal(r.readUInt16BE(4), 0, 'no question echoed')
})
