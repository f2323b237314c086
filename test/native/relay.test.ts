// The addon's relay engine on real loopback sockets, without the sidecar: a front server hands each accepted
// socket's fd to relayAdd (as the listener does), and the engine relays it to an upstream server.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawn } from 'node:child_process'
import t from 'tap'
import { relayAbort, relayAdd, relayStart, relayStats, relayStop, type RelayEvent } from '../../src/native/relay.js'
import { drain, listen, relayed, sha, start, type Closed } from '../helpers/relay-harness.js'
import { nameOutcome } from '../../src/proxy/engines/ledger.js'
import { relayClose } from '../../src/proxy/engines/native.js'
import { eventually } from '../helpers/wait.js'
import { TCP_CLOSE, tcpInfoOf } from '../../src/native/sockopt.js'

start()
t.teardown(() => relayStop())

/** The access log's connection_termination_details for a closed event (ledger.ts names both engines' closes). */
const termination = (c: Closed | undefined) =>
  c ? nameOutcome({ failure: undefined, looped: false, close: relayClose(c) }).terminationDetails : undefined

t.test('bytes both ways arrive whole, counted in the closed event; the upstream leaves from the bind address', async (t) => {
  const r = await relayed(t, undefined, '127.0.0.6')
  const up = await r.upstream
  t.equal(up.remoteAddress, '127.0.0.6')
  const a = randomBytes(3 * 1024 * 1024)
  const b = randomBytes(5 * 1024 * 1024 + 17)
  const atUpstream = drain(up)
  const atClient = drain(r.client)
  r.client.end(a)
  up.end(b)
  const [u, c] = await Promise.all([atUpstream, atClient])
  t.same(u, { bytes: a.length, sha: sha(a), error: null })
  t.same(c, { bytes: b.length, sha: sha(b), error: null })
  const closed = await r.closed
  t.same(closed, {
    type: 'closed',
    id: r.id,
    downstreamRx: a.length,
    downstreamTx: b.length,
    upstreamRx: b.length,
    upstreamTx: a.length,
    close: 'clean',
  })
  t.equal(r.events[0]?.type, 'connected')
})

t.test('half-close: the client FIN reaches the upstream, which still answers; and the other way round', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  const atClient = drain(r.client)
  r.client.end('question')
  let got = ''
  up.on('data', (c: Buffer) => (got += c))
  await once(up, 'end')
  t.equal(got, 'question')
  up.end('answer after the FIN')
  const c = await atClient
  t.same(c.error, null)
  t.equal(c.bytes, 'answer after the FIN'.length)
  t.equal((await r.closed).close, 'clean')

  const r2 = await relayed(t)
  const up2 = await r2.upstream
  up2.end('server speaks first and ends')
  let got2 = ''
  r2.client.on('data', (c: Buffer) => (got2 += c))
  await once(r2.client, 'end')
  t.equal(got2, 'server speaks first and ends')
  const atUp2 = drain(up2)
  r2.client.end('client still sends')
  t.same(await atUp2, { bytes: 'client still sends'.length, sha: sha(Buffer.from('client still sends')), error: null })
  t.equal((await r2.closed).close, 'clean')
})

t.test('an upstream reset behind its last bytes reaches the client as a reset', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  const atClient = drain(r.client)
  up.write('partial', () => setTimeout(() => up.resetAndDestroy(), 50))
  const c = await atClient
  t.equal(c.error, 'ECONNRESET')
  t.equal(c.bytes, 'partial'.length)
  const closed = await r.closed
  t.match(closed, { close: 'error', side: 'upstream', errno: 104 }, 'typed: the upstream failed with ECONNRESET')
  t.equal(termination(closed), 'upstream_econnreset')
  t.equal(closed.downstreamTx, 'partial'.length)
})

t.test('a client reset reaches the upstream as a reset', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  const atUp = drain(up)
  r.client.write('some', () => setTimeout(() => r.client.resetAndDestroy(), 50))
  t.equal((await atUp).error, 'ECONNRESET')
  t.equal(termination(await r.closed), 'downstream_econnreset')
})

t.test('bytes the upstream can no longer take reset the sender', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  // The upstream closes without reading: its kernel answers further bytes with an RST.
  up.destroy()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const atClient = drain(r.client)
  const timer = setInterval(() => r.client.writable && r.client.write(randomBytes(16 * 1024)), 10)
  t.teardown(() => clearInterval(timer))
  const c = await atClient
  clearInterval(timer)
  // the client learns of the RST on a read (ECONNRESET) or on its next write (EPIPE): a reset either way
  t.match(c.error, /^(ECONNRESET|EPIPE)$/)
  t.match(termination(await r.closed), /^upstream_(econnreset|epipe)$/)
})

t.test('connect refused: a failed event with ECONNREFUSED, then a plain close of the client', async (t) => {
  const probe = createServer()
  const port = await listen(t, probe)
  await new Promise<void>((r) => probe.close(() => r()))
  const r = await relayed(t, port)
  const c = await drain(r.client)
  t.same(c, { bytes: 0, sha: sha(Buffer.alloc(0)), error: null }, 'a FIN, not a reset')
  const closed = await r.closed
  t.same(r.events[0], { type: 'failed', id: r.id, errno: 111, timeout: false })
  t.equal(closed.close, 'clean')
  t.equal(closed.downstreamRx + closed.upstreamTx, 0)
})

t.test('abort resets both sides', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  await new Promise<void>((resolve) => {
    up.once('data', () => resolve())
    r.client.write('x')
  })
  const atClient = drain(r.client)
  const atUp = drain(up)
  relayAbort(r.id, 'reset')
  t.equal((await atClient).error, 'ECONNRESET')
  t.equal((await atUp).error, 'ECONNRESET')
  t.equal((await r.closed).close, 'drain')
  t.equal(termination(await r.closed), 'drain_timeout')
})

t.test('reading pauses at the buffer limit while the upstream does not read, and resumes with nothing lost', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  up.pause()
  const data = randomBytes(8 * 1024 * 1024)
  r.client.end(data)
  const flow = () => r.events.filter((e) => e.type === 'flow') as Extract<RelayEvent, { type: 'flow' }>[]
  // the relay reports a pause in a flow event: wait for it
  await eventually(() => flow().reduce((n, e) => n + e.paused, 0) >= 1, 10_000)
  t.ok(flow().reduce((n, e) => n + e.paused, 0) >= 1, 'paused at least once')
  const atUp = drain(up)
  up.resume()
  t.same(await atUp, { bytes: data.length, sha: sha(data), error: null })
  up.end()
  await r.closed
  t.ok(flow().reduce((n, e) => n + e.resumed, 0) >= 1, 'resumed')
})

t.test('a client reset while reading from it is paused reaches the upstream as a reset', async (t) => {
  const r = await relayed(t)
  const up = await r.upstream
  up.pause()
  r.client.write(randomBytes(32 * 1024 * 1024))
  const paused = () => r.events.some((e) => e.type === 'flow' && e.paused > 0)
  for (const end = Date.now() + 10_000; !paused(); await sleep(20)) {
    if (Date.now() > end) throw new Error('reading never paused')
  }
  r.client.resetAndDestroy()
  // unfixed, nothing reads the paused client, so the connection waits for the idle timeout (none here)
  const closed = await Promise.race([r.closed, sleep(10_000, undefined)])
  t.equal(termination(closed), 'downstream_econnreset', 'closed with the downstream reset, not left open')
  // read by nobody, the upstream's socket shows the RST as its state: CLOSE (a FIN would leave CLOSE_WAIT)
  for (const end = Date.now() + 5000; tcpInfoOf(up)?.state !== TCP_CLOSE && Date.now() < end;) await sleep(20)
  t.equal(tcpInfoOf(up)?.state, TCP_CLOSE, 'the upstream is reset')
})

t.test('idle timeout closes both sides with idle_timeout', async (t) => {
  relayStop()
  start({ idleTimeoutMs: 300 })
  t.teardown(() => {
    relayStop()
    start()
  })
  const r = await relayed(t)
  const up = await r.upstream
  const atClient = drain(r.client)
  const atUp = drain(up)
  r.client.write('one byte then silence')
  t.same((await atClient).error, null)
  t.equal((await atUp).bytes, 'one byte then silence'.length)
  const closed = await r.closed
  t.equal(closed.close, 'idle')
  t.equal(termination(closed), 'idle_timeout')
  t.ok(r.events.some((e) => e.type === 'idle'))
})

t.test('idle connections hold no pipe: pipes are taken only while bytes are in flight', async (t) => {
  const open = await Promise.all(Array.from({ length: 50 }, () => relayed(t)))
  await Promise.all(
    open.map(async (r) => {
      const up = await r.upstream
      const echoed = new Promise((resolve) => r.client.once('data', resolve))
      up.on('data', (c: Buffer) => up.write(c))
      r.client.write('ping')
      await echoed
    }),
  )
  const s = relayStats()
  t.equal(s.connections, 50, 'all 50 open in the relay')
  t.equal(s.pipesInUse, 0, 'none holds a pipe')
  t.ok(s.pipesPooled <= 64, `the pool is bounded (${s.pipesPooled})`)
  for (const r of open) r.client.end()
  await Promise.all(open.map(async (r) => (await r.upstream).end()))
  await Promise.all(open.map((r) => r.closed))
})

t.test('short messages go by recv/send and take no pipe; a read that fills the scratch buffer moves to splice', async (t) => {
  relayStop()
  start() // an empty pool: the pipes counted below are this test's
  const r = await relayed(t)
  const up = await r.upstream
  up.on('data', (c: Buffer) => up.write(c))
  for (const m of ['ping', 'a second message', 'x'.repeat(1000)]) {
    const echoed = new Promise((resolve) => r.client.once('data', resolve))
    r.client.write(m)
    t.equal(String(await echoed), m, `${m.length} bytes echoed`)
  }
  t.same(pick(relayStats()), { pipesInUse: 0, pipesPooled: 0 }, 'no pipe was taken for them')
  const big = randomBytes(1024 * 1024)
  const back = new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = []
    let n = 0
    r.client.on('data', (c: Buffer) => {
      chunks.push(c)
      if ((n += c.length) === big.length) resolve(Buffer.concat(chunks))
    })
  })
  r.client.write(big)
  t.equal(sha(await back), sha(big), '1 MiB echoed whole')
  const s = relayStats()
  t.ok(s.pipesInUse + s.pipesPooled > 0, `the bulk bytes went through pipes (${s.pipesPooled} pooled)`)
  r.client.end()
  up.end()
  t.equal((await r.closed).close, 'clean', 'closed cleanly')
})

const pick = (s: { pipesInUse: number; pipesPooled: number }) => ({ pipesInUse: s.pipesInUse, pipesPooled: s.pipesPooled })

t.test('no pipe to be had (EMFILE): the read/write fallback relays the bytes whole', async (t) => {
  // In a child, so this process keeps its descriptors: once the connection is up, every free descriptor is
  // taken, so pipe2() fails and both directions fall back to read/write.
  const dist = (f: string) => JSON.stringify(new URL(`../../dist/native/${f}`, import.meta.url).pathname)
  const script = `
    import { relayAdd, relayStart, relayStats } from ${dist('relay.js')}
    import { socketFd } from ${dist('sockopt.js')}
    import { createServer, connect } from 'node:net'
    import { openSync } from 'node:fs'
    import { createHash, randomBytes } from 'node:crypto'
    let closed
    relayStart((events) => { for (const e of events) if (e.type === 'closed') closed = e },
      { bufferLimitBytes: 65536, connectTimeoutMs: 5000, idleTimeoutMs: 0 })
    const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)))
    let upstreamReady
    const ready = new Promise((r) => (upstreamReady = r))
    const upstream = createServer({ allowHalfOpen: true }, (s) => { s.pipe(s); upstreamReady() })
    const upPort = await listen(upstream)
    const front = createServer({ pauseOnConnect: true }, (s) => {
      relayAdd(1, socketFd(s), { address: '127.0.0.1', port: upPort, family: 4 }, {})
      s.destroy()
    })
    const client = connect(await listen(front), '127.0.0.1')
    await ready
    // One byte there and back first: the relay thread has then pumped both directions (taking a pipe and giving
    // it back to the pool) before this thread takes the descriptors. Without it the relay's first pump could run
    // while the loop below fills the table, and its pipe2() would get two descriptors. Then wait until no pipe is
    // in use and the pool has closed.
    await new Promise((r) => { client.once('data', r); client.write('x') })
    for (const end = Date.now() + 10000; (relayStats().pipesInUse > 0 || relayStats().pipesPooled > 0) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50))
    const pooledBefore = relayStats().pipesPooled
    const held = []
    try { for (;;) held.push(openSync('/dev/null', 'r')) } catch (err) { if (err.code !== 'EMFILE') throw err }
    const data = randomBytes(2 * 1024 * 1024)
    const hash = createHash('sha256')
    let bytes = 0
    // Everything is echoed before anything closes: a closed socket would free descriptors for a pipe.
    const echoed = new Promise((r) => client.on('data', (c) => { bytes += c.length; hash.update(c); if (bytes === data.length) r() }))
    client.write(data)
    await echoed
    const stats = relayStats()
    client.end()
    await new Promise((r) => client.on('end', r))
    for (const end = Date.now() + 5000; !closed && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10))
    console.log(JSON.stringify({ held: held.length, bytes, same: hash.digest('hex') === createHash('sha256').update(data).digest('hex'),
      close: closed?.close, stats, pooledBefore }))
    process.exit(0)
  `
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('prlimit', ['--nofile=200', process.execPath, '--input-type=module', '-e', script])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (out += c))
    child.on('close', (code) => resolve({ code, out }))
  })
  t.equal(r.code, 0, r.out)
  const got = JSON.parse(r.out) as {
    held: number
    bytes: number
    same: boolean
    close: string
    stats: { pipesInUse: number; pipesPooled: number }
    pooledBefore: number
  }
  t.equal(got.pooledBefore, 0, 'the pool was empty when the descriptors ran out')
  t.ok(got.held > 0, `${got.held} descriptors taken, none left for a pipe`)
  t.equal(got.bytes, 2 * 1024 * 1024)
  t.ok(got.same, 'the echo is the bytes sent (sha256)')
  t.equal(got.close, 'clean')
  t.same([got.stats.pipesInUse, got.stats.pipesPooled], [0, 0], 'no pipe was made: the bytes went by read/write')
})

t.test('every connection closed: no entry and no pipe left in use', async (t) => {
  await eventually(() => relayStats().connections === 0)
  const s = relayStats()
  t.equal(s.connections, 0)
  t.equal(s.pipesInUse, 0)
  // the pool is closed after a second without use: an idle sidecar holds no pipe
  t.equal(await eventually(() => relayStats().pipesPooled === 0 && 'empty', 5000), 'empty', 'the pool is empty')
})

t.test('bad arguments are TypeErrors naming them', async (t) => {
  t.throws(() => relayAbort(1, 'later' as 'reset'), { name: 'TypeError', message: /how must be/ })
  t.throws(() => relayAdd(-1, 0, { address: '127.0.0.1', port: 1, family: 4 }, {}), { name: 'TypeError', message: /^id must be/ })
  t.throws(() => relayAdd(1, 0, { address: 'nowhere', port: 1, family: 4 }, {}), { code: 'EINVAL', syscall: 'inet_pton' })
  const dst = { address: '127.0.0.1', port: 1, family: 4 as const }
  t.throws(() => relayAdd(1, 0, { ...dst, address: 5 as unknown as string }, {}), {
    name: 'TypeError',
    message: 'dst.address must be a string',
  })
  t.throws(() => relayAdd(1, 0, dst, { address: 5 as unknown as string }), { name: 'TypeError', message: 'bind.address must be a string' })
  t.throws(
    () => relayAdd(1, 0, { ...dst, address: `${'1:2:3:4:5:6:7:8'.padEnd(45, ' ')}garbage` }, {}),
    { code: 'EINVAL', syscall: 'inet_pton' },
    'a string too long for an address is refused, not cut',
  )
  t.throws(() => relayAdd(1, 0, { ...dst, port: 65536 }, {}), { name: 'TypeError', message: /^port must be an integer/ })
  t.throws(() => relayStart(() => {}, { bufferLimitBytes: 1, connectTimeoutMs: 1, idleTimeoutMs: 0 }), { code: 'EALREADY' })
})

t.test('without CAP_NET_ADMIN or CAP_NET_RAW, relayAdd names the socket option the kernel refused', async (t) => {
  // In a child whose bounding set is empty, so root there holds no capability.
  const dist = (f: string) => JSON.stringify(new URL(`../../dist/native/${f}`, import.meta.url).pathname)
  const script = `
    import { relayAdd, relayStart, relayStop } from ${dist('relay.js')}
    import { socketFd } from ${dist('sockopt.js')}
    import { createServer, connect } from 'node:net'
    relayStart(() => {}, { bufferLimitBytes: 65536, connectTimeoutMs: 5000, idleTimeoutMs: 0 })
    const server = createServer({ pauseOnConnect: true })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const accepted = new Promise((r) => server.once('connection', r))
    const client = connect(server.address().port, '127.0.0.1')
    const s = await accepted
    const dst = { address: '127.0.0.1', port: 9, family: 4 }
    const attempt = (bind) => { try { relayAdd(1, socketFd(s), dst, bind); return 'added' } catch (e) { return [e.code, e.syscall] } }
    console.log(JSON.stringify([attempt({ address: '127.0.0.2', transparent: true, mark: 1337 }), attempt({ mark: 1337 })]))
    client.destroy(); s.destroy(); server.close(); relayStop()
  `
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, '--input-type=module', '-e', script])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (out += c))
    child.on('close', (code) => resolve({ code, out }))
  })
  t.equal(r.code, 0, r.out)
  t.same(JSON.parse(r.out), [
    ['EPERM', 'setsockopt(IP_TRANSPARENT)'],
    ['EPERM', 'setsockopt(SO_MARK)'],
  ])
})
