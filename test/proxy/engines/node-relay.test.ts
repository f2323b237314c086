import { createHash } from 'node:crypto'
import { connect, createServer, type NetConnectOpts, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { relay } from '../../../src/proxy/engines/node-relay.js'
import { Counter } from '../../../src/stats/stats.js'

async function pair(t: Test, highWaterMark?: number): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const accepted = new Promise<Socket>((r) => server.once('connection', r))
  const opts = {
    port: (server.address() as { port: number }).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
    highWaterMark,
  } as NetConnectOpts
  const client = connect(opts)
  const a = await accepted
  t.teardown(() => {
    client.destroy()
    a.destroy()
    server.close()
  })
  return [client, a]
}

t.test('reading pauses while the other side holds more than the buffer limit, and nothing is lost', { timeout: 30_000 }, async (t) => {
  const limit = 256 * 1024
  const [app, downstream] = await pair(t)
  const [upstream, backend] = await pair(t, limit)
  const flow = { paused: new Counter(), resumed: new Counter() }
  relay(downstream, upstream, flow)
  // A reader that starts late: the kernel buffers fill, then the proxy's own buffer must stop growing.
  const got = createHash('sha256')
  let received = 0
  setTimeout(() => {
    backend.on('data', (c: Buffer) => {
      received += c.length
      got.update(c)
    })
  }, 500)
  let maxBuffered = 0
  const sample = setInterval(() => (maxBuffered = Math.max(maxBuffered, upstream.writableLength)), 2)
  const total = 32 * 1024 * 1024
  const block = Buffer.alloc(64 * 1024, 7)
  const sent = createHash('sha256')
  for (let n = 0; n < total; n += block.length) {
    sent.update(block)
    if (!app.write(block)) await new Promise((r) => app.once('drain', r))
  }
  app.end()
  await new Promise((r) => backend.once('end', r))
  clearInterval(sample)
  t.equal(received, total, 'every byte arrived')
  t.equal(got.digest('hex'), sent.digest('hex'), 'in order (sha256)')
  t.ok(flow.paused.value > 0, `reading paused ${flow.paused.value} times`)
  t.equal(flow.resumed.value, flow.paused.value, 'and resumed as often')
  t.ok(maxBuffered <= limit + 64 * 1024, `proxy-side buffer peaked at ${maxBuffered} bytes (limit ${limit} + one read)`)
})

t.test('a FIN is passed on as a FIN: the other direction stays open', { timeout: 10_000 }, async (t) => {
  const [app, downstream] = await pair(t)
  const [upstream, backend] = await pair(t)
  const flow = { paused: new Counter(), resumed: new Counter() }
  relay(downstream, upstream, flow)
  relay(upstream, downstream, flow)
  app.end('question')
  let seen = ''
  backend.on('data', (c: Buffer) => (seen += c))
  await new Promise((r) => backend.once('end', r))
  t.equal(seen, 'question', 'backend read the request, then end-of-stream')
  backend.end('answer after FIN')
  let reply = ''
  app.on('data', (c: Buffer) => (reply += c))
  await new Promise((r) => app.once('end', r))
  t.equal(reply, 'answer after FIN')
})

t.test('bytes that can no longer be delivered reset the sender', { timeout: 10_000 }, async (t) => {
  const [app, downstream] = await pair(t)
  const [upstream] = await pair(t)
  relay(downstream, upstream, { paused: new Counter(), resumed: new Counter() })
  upstream.destroy()
  const error = new Promise<NodeJS.ErrnoException>((r) => app.once('error', r))
  app.write('lost?')
  t.equal((await error).code, 'ECONNRESET', 'the sender sees a reset, not silence')
})
