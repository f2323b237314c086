// The relay engine's failure paths that real traffic reaches only by luck, driven by native/faults.h's switch
// (SIDECAR_LAB_FAULTS, read at each relayStart). The switch exists only in the sanitizer build, so these run
// under `npm run test:asan` (which sets SIDECAR_LAB_EXPECT_FAULTS=1: there, a build without it is a failure)
// and skip with the reason elsewhere.
import { spawn } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { addonPath } from '../../src/native/addon.js'
import { relayAbort, relayAdd, relayFaultInjection, relayStats, relayStop } from '../../src/native/relay.js'
import { socketFd } from '../../src/native/sockopt.js'
import { drain, listen, relayed, sha, start } from '../helpers/relay-harness.js'

const MiB = 1024 * 1024

function faultsOnly(): { skip?: string } {
  if (relayFaultInjection()) return {}
  if (process.env.SIDECAR_LAB_EXPECT_FAULTS === '1') {
    throw new Error(`SIDECAR_LAB_EXPECT_FAULTS=1 but the addon at ${addonPath()} has no fault switch (-DSIDECAR_LAB_FAULTS)`)
  }
  return { skip: `the addon at ${addonPath()} is not the fault-injection build (npm run test:asan runs these)` }
}

/** (Re)starts the engine with these faults, and without any once the test is done. */
function withFaults(t: Test, spec: string, bufferLimitBytes = 256 * 1024): void {
  relayStop()
  process.env.SIDECAR_LAB_FAULTS = spec
  start({ bufferLimitBytes })
  t.teardown(() => {
    relayStop()
    delete process.env.SIDECAR_LAB_FAULTS
  })
}

t.test('splice refused mid-stream (EINVAL): the direction goes on by read/write, 16 MiB whole', faultsOnly(), async (t) => {
  // The second splice out: by then the pipe holds one read's worth, often less than the buffer limit, and the
  // client keeps sending, so the buffer the direction switched to is filled to the limit at once.
  for (const round of [1, 2, 3]) {
    withFaults(t, 'splice_einval=2', 1 * MiB)
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
  const reset = new Promise<string | undefined>((resolve) => {
    r.client.on('error', (err: NodeJS.ErrnoException) => resolve(err.code))
    r.client.on('close', () => resolve(undefined))
  })
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
