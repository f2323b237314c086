// The relay engine's failure paths that real traffic reaches only by luck, driven by native/faults.h's switch
// (SIDECAR_LAB_FAULTS, read at each relayStart). The switch exists only in the sanitizer build, so these run
// under `npm run test:asan` (which sets SIDECAR_LAB_EXPECT_FAULTS=1: there, a build without it is a failure)
// and skip with the reason elsewhere.
import { spawn } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { addonPath } from '../../src/native/addon.js'
import { relayAbort, relayAdd, relayStats } from '../../src/native/relay.js'
import { socketFd } from '../../src/native/sockopt.js'
import { drain, ending, faultsOnly, listen, relayed, sha, withFaults, within } from '../helpers/relay-harness.js'

const MiB = 1024 * 1024

t.test('splice refused mid-stream (EINVAL): the direction goes on by read/write, 16 MiB whole', faultsOnly(), async (t) => {
  // The second splice out: by then the pipe holds one read's worth, often less than the buffer limit, and the
  // client keeps sending, so the buffer the direction switched to is filled to the limit at once.
  for (const round of [1, 2, 3]) {
    withFaults(t, 'splice_einval=2', { bufferLimitBytes: 1 * MiB })
    const r = await relayed(t)
    const up = await r.upstream
    const data = randomBytes(16 * MiB)
    const got = drain(up)
    r.client.end(data)
    t.same(await got, { bytes: 16 * MiB, sha: sha(data), error: null }, `round ${round}: 16 MiB whole (sha256)`)
    up.end()
    t.equal((await r.closed).close, 'clean', `round ${round}: closed cleanly`)
  }
})

t.test('read/write buffer not to be had when splice is refused: ENOMEM, the client is reset', faultsOnly(), async (t) => {
  withFaults(t, 'splice_einval=1,rw_alloc=1')
  const r = await relayed(t)
  const reset = ending(r.client)
  r.client.write(randomBytes(64 * 1024))
  const closed = await r.closed
  t.match(closed, { close: 'error', side: 'upstream', errno: 12 }, 'closed as an error: ENOMEM on the way upstream')
  t.equal(await reset, 'ECONNRESET', 'the client sees a reset, not a clean end')
})

t.test('an abort command not to be had is ENOMEM to the caller', faultsOnly(), async (t) => {
  withFaults(t, 'cmd_alloc=1')
  t.throws(() => relayAbort(1, 'reset'), { code: 'ENOMEM' })
})

t.test('an add whose command is not to be had throws ENOMEM and keeps nothing', faultsOnly(), async (t) => {
  withFaults(t, 'cmd_alloc=1')
  const accepted = new Promise<Socket>((resolve) => {
    const front = createServer({ pauseOnConnect: true }, resolve)
    void listen(t, front).then((port) => {
      const client = connect({ port, host: '127.0.0.1' }).on('error', () => {})
      t.teardown(() => client.destroy())
    })
  })
  const s = await accepted
  t.teardown(() => s.destroy())
  t.throws(() => relayAdd(1, socketFd(s), { address: '127.0.0.1', port: 9, family: 4 }, {}), { code: 'ENOMEM', syscall: 'malloc' })
  t.equal(relayStats().connections, 0, 'no connection entered the relay')
})

t.test('relayStop does not depend on an allocation: it returns when none is to be had', faultsOnly(), async (t) => {
  // In a process of its own: a stop that waits forever would hang this one.
  const script =
    `const a = require(${JSON.stringify(addonPath())});` +
    `a.relayStart(() => {}, { bufferLimitBytes: 65536, connectTimeoutMs: 1000, idleTimeoutMs: 0 });` +
    `a.relayStop(); console.log('stopped')`
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, SIDECAR_LAB_FAULTS: 'cmd_alloc=1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  // A bound for a hang, not a speed: the stop takes milliseconds.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])))
  clearTimeout(timer)
  t.same({ code, signal, out: out.trim() }, { code: 0, signal: null, out: 'stopped' }, 'the stop returned and the process exited')
})

t.test(
  'read/write buffer not to be had with bytes waiting (edge-triggered: no new event comes): ENOMEM, both sides reset',
  faultsOnly(),
  async (t) => {
    // No pipe to be had (maxPipes 0), so the first read wants a buffer; the client's bytes are in the socket
    // before the engine gets it, so the read that fails is the one its only epoll event asked for.
    withFaults(t, 'read_alloc=1', { maxPipes: 0 })
    let sent = () => {}
    const r = await relayed(t, undefined, undefined, new Promise<void>((resolve) => (sent = resolve)))
    const client = ending(r.client)
    r.client.write(randomBytes(64 * 1024), () => sent())
    const up = await r.upstream
    const upstream = ending(up)
    t.match(
      await within(r.closed, 'the closed event (a stalled connection never closes)'),
      { close: 'error', side: 'downstream', errno: 12 },
      'closed as an error: ENOMEM reading downstream',
    )
    t.equal(await client, 'ECONNRESET', 'the client sees a reset')
    t.equal(await upstream, 'ECONNRESET', 'the upstream sees a reset, not a clean end of a cut-short stream')
  },
)

/** The engine is down: what it said, and that it keeps nothing and takes nothing more. */
async function isDown(t: Test, down: Promise<unknown>, expected: object): Promise<void> {
  t.match(await within(down, 'the down notice'), expected, 'one down notice with the reason')
  t.equal(relayStats().connections, 0, 'no connection left in the table')
  t.throws(
    () => relayAdd(999, 0, { address: '127.0.0.1', port: 9, family: 4 }, {}),
    { code: 'ENOTCONN' },
    'a down engine takes no connection',
  )
  t.throws(() => relayAbort(999, 'reset'), { code: 'ENOTCONN' }, 'nor an abort')
}

for (const [fault, reason, errno] of [
  ['event_alloc=1', 'event_alloc', 12],
  ['tsfn_call=1', 'tsfn_call', 0],
] as const) {
  t.test(`${reason}: the connected event is lost, so the engine goes down and resets what it relays`, faultsOnly(), async (t) => {
    const { down } = withFaults(t, fault)
    const r = await relayed(t)
    const client = ending(r.client)
    const up = await r.upstream
    const upstream = ending(up)
    await isDown(t, down, { reason, errno })
    t.equal(await client, 'ECONNRESET', 'the client sees a reset')
    t.equal(await upstream, 'ECONNRESET', 'the upstream sees a reset')
    t.same(
      r.events.map((e) => e.type),
      [],
      'no event for the connection: the down notice stands for them all',
    )
  })
}

t.test('epoll_wait failing takes the engine down: a notice, not a thread that ended unseen', faultsOnly(), async (t) => {
  const { down } = withFaults(t, 'epoll_wait=1')
  await isDown(t, down, { reason: 'epoll_wait', errno: 9 })
})

t.test('a first message the upstream takes only part of waits in a buffer and arrives whole', faultsOnly(), async (t) => {
  // send_short: the first send of a direction's first reads (move_small) takes one byte, as a full socket would.
  withFaults(t, 'send_short=1')
  const r = await relayed(t)
  const up = await r.upstream
  const data = randomBytes(1000)
  const got = drain(up)
  r.client.end(data)
  t.same(await got, { bytes: 1000, sha: sha(data), error: null }, 'the 1,000 bytes whole (sha256)')
  up.end()
  t.equal((await r.closed).close, 'clean', 'closed cleanly')
})

t.test('the buffer for what the upstream did not take is not to be had: ENOMEM, both sides reset', faultsOnly(), async (t) => {
  withFaults(t, 'send_short=1,read_alloc=1')
  const r = await relayed(t)
  const up = await r.upstream
  const [client, upstream] = [ending(r.client), ending(up)]
  r.client.write(randomBytes(1000))
  t.match(
    await within(r.closed, 'the closed event'),
    { close: 'error', side: 'downstream', errno: 12 },
    'ENOMEM on the bytes read downstream',
  )
  t.equal(await client, 'ECONNRESET', 'the client sees a reset')
  t.equal(await upstream, 'ECONNRESET', 'the upstream sees a reset, not a clean end of a cut-short stream')
})
