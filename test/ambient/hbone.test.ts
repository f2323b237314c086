// HBONE on loopback (no root): our client and server through mutual TLS + HTTP/2 CONNECT to an app. Bytes
// whole both ways, half-closes and resets carried across, ztunnel's answers to requests it refuses, the TLS
// checks of both sides (missing, foreign, expired certificates, the wrong identity), the session pool, and a
// port that stays up under garbage.
import { randomBytes } from 'node:crypto'
import { connect as h2connect, constants as h2c } from 'node:http2'
import { connect as netConnect, createServer, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import { HboneClient, HboneError, type HboneTunnel, parseAuthority } from '../../src/ambient/hbone/index.js'
import { eventually } from '../helpers/wait.js'
import { LabCerts, spiffe } from './hbone-certs.js'
import { collect, once, sha256, startApp, startHbone } from './hbone-harness.js'

const certs = new LabCerts(t)
const a = certs.workload('a')
const b = certs.workload('b')

/** An app that answers its first bytes with 'ready'; appSaw: how its connection ended (the error, or null for a FIN). */
async function appSeeingTheEnd(tt: { teardown(fn: () => unknown): void }) {
  let appErr: (e: NodeJS.ErrnoException | null) => void = () => {}
  const appSaw = new Promise<NodeJS.ErrnoException | null>((resolve) => (appErr = resolve))
  const app = await startApp(tt, (s) => {
    s.once('data', () => s.write('ready'))
    s.once('error', appErr)
    s.once('end', () => appErr(null))
  })
  return { app, appSaw }
}

function client(tt: { teardown(fn: () => unknown): void }, opts: Partial<ConstructorParameters<typeof HboneClient>[0]> = {}): HboneClient {
  const c = new HboneClient({ identity: a, ...opts })
  tt.teardown(() => c.close())
  return c
}

t.test('5 MB both ways intact; the server sees the client identity', async (t) => {
  const app = await startApp(t)
  const { server, via } = await startHbone(t, b)
  const tunnel = once<HboneTunnel>(server, 'tunnel')
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  const sent = randomBytes(5 * 1024 * 1024)
  const echoed = collect(s)
  s.end(sent)
  const got = await echoed
  t.equal(got.length, sent.length)
  t.equal(sha256(got), sha256(sent), 'sha256 of the echo')
  t.equal((await tunnel).peer.identity, spiffe('a'), "the client's SPIFFE identity, per stream")
  await eventually(() => server.counters.active === 0)
  t.match(server.counters, { accepted: 1, reset: 0, sessions: 1 })
})

t.test("the client's half-close reaches the app, which still answers", async (t) => {
  const app = await startApp(t, (s) => {
    const parts: Buffer[] = []
    s.on('data', (d: Buffer) => parts.push(d))
    s.once('end', () => s.end(`after your FIN: ${Buffer.concat(parts).toString()}`))
  })
  const { via } = await startHbone(t, b)
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  const reply = collect(s)
  s.end('ping')
  t.equal((await reply).toString(), 'after your FIN: ping')
})

t.test("the app's half-close reaches the client, which still sends", async (t) => {
  let appGot: (v: string) => void = () => {}
  const gotByApp = new Promise<string>((resolve) => (appGot = resolve))
  const app = await startApp(t, (s) => {
    s.end('bye') // FIN first, then read what still comes
    collect(s).then((b) => appGot(b.toString()), appGot)
  })
  const { via } = await startHbone(t, b)
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  t.equal((await collect(s)).toString(), 'bye', 'END_STREAM after the data')
  s.end('still here')
  t.equal(await gotByApp, 'still here', 'the app read it after its own FIN')
})

t.test("the app's reset reaches the client as a stream error", async (t) => {
  const app = await startApp(t, (s) => s.once('data', () => s.resetAndDestroy()))
  const { server, via } = await startHbone(t, b)
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  s.write('x')
  const err = await collect(s).then(
    () => null,
    (e: NodeJS.ErrnoException) => e,
  )
  t.match(err, { code: 'ERR_HTTP2_STREAM_ERROR' }, 'an error, not a clean end')
  t.equal(s.rstCode, h2c.NGHTTP2_INTERNAL_ERROR, 'RST_STREAM')
  await eventually(() => server.counters.reset === 1)
})

t.test("the client's reset reaches the app as a TCP reset", async (t) => {
  const { app, appSaw } = await appSeeingTheEnd(t)
  const { server, via } = await startHbone(t, b)
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  s.on('error', () => {})
  s.write('x')
  await once(s, 'data')
  s.destroy(new Error('the client gives up'))
  t.match(await appSaw, { code: 'ECONNRESET' }, 'the app got a RST, not a FIN')
  await eventually(() => server.counters.reset === 1)
})

t.test("the client's TCP connection gone under a tunnel (its ztunnel killed) reaches the app as a reset, not a FIN", async (t) => {
  const { app, appSaw } = await appSeeingTheEnd(t)
  const { server, via } = await startHbone(t, b)
  let raw: Socket | undefined
  const c = client(t, { socketFactory: (v) => (raw = netConnect(v.port, v.address)) })
  const s = await c.connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  s.on('error', () => {})
  s.write('x')
  await once(s, 'data')
  // a FIN with no GOAWAY and no END_STREAM, as the kernel sends for a killed process: Node closes the session's
  // streams as if they had ended
  raw!.destroy()
  t.match(await appSaw, { code: 'ECONNRESET' }, 'the app got a RST, not a FIN')
  await eventually(() => server.counters.reset === 1)
})

t.test('a method other than CONNECT is answered 400', async (t) => {
  const { server, via } = await startHbone(t, b)
  const session = h2connect(`https://127.0.0.1:${via.port}`, { ...a, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined })
  t.teardown(() => session.destroy())
  const req = session.request({ ':method': 'GET', ':path': '/' })
  const headers = await once<Record<string, unknown>>(req, 'response')
  t.equal(headers[':status'], 400)
  t.equal(server.counters.refused.method, 1)
})

t.test('a target this server does not serve is refused 400; one it cannot reach 503', async (t) => {
  const app = await startApp(t)
  const { server, via } = await startHbone(t, b)
  const c = client(t)
  const refused = await c
    .connect({ target: { address: '127.0.0.2', port: app }, via, expectIdentity: spiffe('b') })
    .catch((e: HboneError) => e)
  t.match(refused, { reason: 'status', status: 400, message: /CONNECT 127\.0\.0\.2:\d+ answered 400/ })
  t.equal(server.counters.refused.target, 1)
  const closedPort = await c
    .connect({ target: { address: '127.0.0.1', port: 1 }, via, expectIdentity: spiffe('b') })
    .catch((e: HboneError) => e)
  t.match(closedPort, { reason: 'status', status: 503 })
  t.equal(server.counters.refused.dial, 1)
  t.equal(c.counters.failures.status, 2)
})

t.test(':authority is read as ztunnel reads it', async (t) => {
  t.same(parseAuthority('198.18.0.10:9080'), { address: '198.18.0.10', port: 9080 })
  t.same(parseAuthority('[2001:2::10]:9080'), { address: '2001:2::10', port: 9080 })
  t.same(parseAuthority('reviews.default.svc:9080'), { address: 'reviews.default.svc', port: 9080 })
  for (const bad of ['198.18.0.10', '198.18.0.10:0', '198.18.0.10:70000', '[zz]:80', '2001:2::10:80', ''])
    t.equal(parseAuthority(bad), null, `'${bad}'`)
})

t.test('a client without a certificate is refused at TLS', async (t) => {
  const { server, via } = await startHbone(t, b)
  const s = tlsConnect({ host: '127.0.0.1', port: via.port, ca: b.ca, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined })
  const err = await once<NodeJS.ErrnoException>(s, 'error')
  t.match(err.code, /CERTIFICATE_REQUIRED|ALERT/, String(err.code))
  await eventually(() => server.counters.tlsFailures === 1)
  t.equal(server.counters.sessions, 0)
})

t.test('a client certificate from another CA is refused at TLS', async (t) => {
  const { server, via } = await startHbone(t, b)
  const foreign = certs.workload('foreign', { ca: 'other-ca', sa: 'a' })
  const c = client(t, { identity: { ...foreign, ca: a.ca } })
  const err = await c.connect({ target: { address: '127.0.0.1', port: 9 }, via, expectIdentity: spiffe('b') }).catch((e: HboneError) => e)
  // the server (Node's TLS) closes without an alert on a certificate it cannot verify: the client sees the close
  t.match(err, { reason: 'session', message: /session closed before an answer/ })
  await eventually(() => server.counters.tlsFailures === 1)
})

t.test('a server with the wrong identity is refused by the client', async (t) => {
  const { server, via } = await startHbone(t, b)
  const c = client(t)
  const err = await c.connect({ target: { address: '127.0.0.1', port: 9 }, via, expectIdentity: spiffe('c') }).catch((e: HboneError) => e)
  t.type(err, HboneError)
  t.match(err, { reason: 'identity', message: `did not present the expected identity ${spiffe('c')}, got ${spiffe('b')}` })
  t.equal(server.counters.accepted, 0)
  t.equal(c.counters.failures.identity, 1)
})

t.test('expired certificates are refused on both sides', async (t) => {
  const app = await startApp(t)
  const old = certs.workload('old', { expired: true, sa: 'b' })
  const { via: oldVia } = await startHbone(t, old)
  const err = await client(t)
    .connect({ target: { address: '127.0.0.1', port: app }, via: oldVia, expectIdentity: spiffe('b') })
    .catch((e: HboneError) => e)
  t.match(err, { reason: 'tls', message: /expired/ }, "the server's")
  const { server, via } = await startHbone(t, b)
  const oldClient = client(t, { identity: certs.workload('old-a', { expired: true, sa: 'a' }) })
  const err2 = await oldClient
    .connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
    .catch((e: HboneError) => e)
  t.type(err2, HboneError, "the client's")
  await eventually(() => server.counters.tlsFailures === 1)
  t.equal(server.counters.accepted, 0)
})

t.test('pool: 3 concurrent tunnels share a session; past the stream limit a second opens; idle ones close', async (t) => {
  const app = await startApp(t)
  const { server, via } = await startHbone(t, b)
  const open = (c: HboneClient) => c.connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  const shared = client(t)
  const three = await Promise.all([open(shared), open(shared), open(shared)])
  t.equal(shared.counters.sessionsOpened, 1)
  t.equal(server.counters.sessions, 1, 'one TLS session at the server')
  for (const s of three) s.end()
  await Promise.all(three.map((s) => collect(s)))

  const limited = client(t, { maxStreamsPerSession: 2, idleSessionMs: 50 })
  const more = await Promise.all([open(limited), open(limited), open(limited)])
  t.equal(limited.counters.sessionsOpened, 2, 'a third tunnel over a limit of 2 opens a second session')
  t.equal(server.counters.sessions, 3)
  for (const s of more) s.end()
  await Promise.all(more.map((s) => collect(s)))
  await eventually(() => limited.sessions === 0)
  await eventually(() => server.counters.active === 0)
})

t.test('garbage, plain HTTP/1.1 and TLS without h2 are closed and counted; the server carries on', async (t) => {
  const app = await startApp(t)
  const { server, via } = await startHbone(t, b)
  for (const bytes of [randomBytes(600), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]) {
    const s = netConnect(via.port, '127.0.0.1')
    s.on('error', () => {})
    s.end(bytes)
    await once(s, 'close')
  }
  await eventually(() => server.counters.tlsFailures === 2)
  const h1 = tlsConnect({ host: '127.0.0.1', port: via.port, ...a, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined })
  h1.on('error', () => {})
  await once(h1, 'close')
  await eventually(() => server.counters.alpnFailures === 1)
  const noPreface = tlsConnect({ host: '127.0.0.1', port: via.port, ...a, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined })
  noPreface.on('error', () => {})
  noPreface.resume() // read the server's SETTINGS and GOAWAY to its FIN
  noPreface.once('secureConnect', () => noPreface.write(randomBytes(100)))
  await once(noPreface, 'close')
  await eventually(() => server.counters.sessionErrors === 1)
  const s = await client(t).connect({ target: { address: '127.0.0.1', port: app }, via, expectIdentity: spiffe('b') })
  const echo = collect(s)
  s.end('still serving')
  t.equal((await echo).toString(), 'still serving')
})

t.test("connections accepted elsewhere (handle) and a client's own sockets (socketFactory)", async (t) => {
  const app = await startApp(t)
  const { server } = await startHbone(t, b)
  // the pod proxy's own 15008 listener hands its connections over
  const outer = createServer((sock) => server.handle(sock))
  await new Promise<void>((resolve) => outer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => outer.close(resolve)))
  const port = (outer.address() as { port: number }).port
  const made: Socket[] = []
  const c = client(t, {
    socketFactory: (via) => {
      const s = netConnect(via.port, via.address)
      made.push(s)
      return s
    },
  })
  const s = await c.connect({
    target: { address: '127.0.0.1', port: app },
    via: { address: '127.0.0.1', port },
    expectIdentity: spiffe('b'),
  })
  const echo = collect(s)
  s.end('through handle()')
  t.equal((await echo).toString(), 'through handle()')
  t.equal(made.length, 1, "the session's TCP connection came from socketFactory")
  t.equal(server.counters.accepted, 1)
})

t.test('a peer that stops answering PINGs: the session is closed after the timeout and its tunnel reset', async (t) => {
  const app = await startApp(t)
  const { via } = await startHbone(t, b)
  // A TCP hop between client and server that can freeze: it stops reading either way and keeps the connection
  // open, as a peer that hangs or a path that drops everything would.
  const held: Socket[] = []
  const hop = createServer((down) => {
    const up = netConnect(via.port, via.address)
    held.push(down, up)
    down.pipe(up)
    up.pipe(down)
  })
  await new Promise<void>((resolve) => hop.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of held) s.destroy()
    return new Promise((resolve) => hop.close(resolve))
  })
  const warnings: string[] = []
  const log = { warn: (_o: unknown, msg: string) => warnings.push(msg), debug: () => {}, info: () => {} }
  const c = client(t, { pingIntervalMs: 100, pingTimeoutMs: 1000, log: log as never })
  const s = await c.connect({
    target: { address: '127.0.0.1', port: app },
    via: { address: '127.0.0.1', port: (hop.address() as { port: number }).port },
    expectIdentity: spiffe('b'),
  })
  // answered pings keep the session: bytes still cross after several rounds
  await new Promise((resolve) => setTimeout(resolve, 500))
  const echoed = once<Buffer>(s, 'data')
  s.write('still here')
  t.equal((await echoed).toString(), 'still here', 'pings answered: the tunnel carries on')
  t.equal(c.counters.pingTimeouts, 0)

  for (const x of held) {
    x.unpipe()
    x.pause()
  }
  const err = await once<Error>(s, 'error', 10_000)
  t.match(err, {}, `the tunnel ended with an error (${err.message})`)
  t.equal(c.counters.pingTimeouts, 1, 'counted')
  t.match(warnings, [/HBONE ping timeout: 127\.0\.0\.1:\d+ did not answer a PING in 1000 ms/], 'logged')
  await eventually(() => c.sessions === 0)
})
