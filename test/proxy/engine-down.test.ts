// The native relay engine going down, as the sidecar meets it: the connections it held close (typed, out of the
// active set and the descriptor budget), readiness fails, the listeners stop accepting, and `proxy` exits
// non-zero naming the reason. The engine is taken down by native/faults.h's switch, so these run under
// `npm run test:asan` and skip with the reason elsewhere.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { healthHandler } from '../../src/admin/health.js'
import { defaultDnsConfig } from '../../src/dns/config.js'
import { defaultProxyConfig } from '../../src/proxy/config.js'
import { stopNativeRelay } from '../../src/proxy/engines/native.js'
import { Sidecar } from '../../src/proxy/sidecar.js'
import { freePort, loopback, MemoryAccessLog, outboundListener, upstream } from '../helpers/loopback-proxy.js'
import { repoRoot } from '../helpers/pods.js'
import { ending, faultsOnly, within } from '../helpers/relay-harness.js'

/** The engine (re)started with these faults by whoever starts it next; stopped and without them at the end. */
function withFaults(t: Test, spec: string): void {
  stopNativeRelay()
  process.env.SIDECAR_LAB_FAULTS = spec
  t.teardown(() => {
    stopNativeRelay()
    delete process.env.SIDECAR_LAB_FAULTS
  })
}

t.test('a lost event: the connection closes as relay_engine_down and leaves the active set', faultsOnly(), async (t) => {
  // event_alloc=1: the first connection's 'connected' event cannot be allocated.
  withFaults(t, 'event_alloc=1')
  const h = await outboundListener(t, { relay: 'native' })
  const up = await upstream(t, () => {})
  h.route(loopback(up.port))
  const client = h.client()
  const ended = ending(client)
  const record = await within(h.recorder.record(1), 'the closed record (a lost closed event never comes)')
  t.equal(record.terminationDetails, 'relay_engine_down', 'closed, and says why')
  t.equal(h.listener.activeConnections, 0, "out of the listener's active set")
  t.equal(await ended, 'ECONNRESET', 'the client sees a reset')
})

t.test('the sidecar: readiness fails, the listeners stop, the failure is logged and counted', faultsOnly(), async (t) => {
  // epoll_wait=1: the thread's first wait fails, as soon as it starts.
  withFaults(t, 'epoll_wait=1')
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const config = {
    ...defaultProxyConfig,
    relay: 'native' as const,
    bindAddress: '127.0.0.1',
    outboundPort: await freePort(),
    inboundPort: await freePort(),
    dns: { ...defaultDnsConfig, port: 0 },
  }
  const sidecar = new Sidecar(config, pino(sink), new MemoryAccessLog())
  t.teardown(() => sidecar.drain())
  await sidecar.start()
  const failure = await within(sidecar.failure, "the sidecar's failure")
  t.match(failure, { code: 'SIDECAR_ERR_RELAY_DOWN', message: /relay engine went down \(epoll_wait, EBADF/ })
  const ready = await healthHandler(sidecar)({ method: 'GET', path: '/healthz/ready', query: new URLSearchParams() })
  t.equal(ready.status, 503, '/healthz/ready fails')
  t.equal(sidecar.stats.snapshot()['sidecar.relay_engine_down'], 1, 'counted in sidecar.relay_engine_down')
  t.ok(
    lines.some((l) => l.level === 50 && l.reason === 'epoll_wait' && l.code === 'EBADF'),
    'an error line names the reason and errno',
  )
  await within(
    (async () => {
      while (sidecar.listeners.some((l) => l.listening)) await new Promise((r) => setImmediate(r))
    })(),
    'the listeners closing',
  )
  t.pass('the listeners stopped accepting')
})

t.test('`proxy` exits non-zero when its engine goes down, naming the reason', faultsOnly(), async (t) => {
  const [outbound, inbound, health] = [await freePort(), await freePort(), await freePort()]
  const args = [join(repoRoot, 'dist/cli.js'), 'proxy', '--relay', 'native', '--bind', '127.0.0.1', '--log-format', 'json']
  for (const [flag, value] of Object.entries({ outbound, inbound, health, admin: 0, prometheus: 0, 'merged-metrics': 0, dns: 0 })) {
    args.push(`--${flag}-port`, String(value))
  }
  args.push('--uid', String(process.getuid?.() ?? 0), '--gid', String(process.getgid?.() ?? 0), '--access-log', 'off')
  const child = spawn(process.execPath, args, {
    env: { ...process.env, SIDECAR_LAB_FAULTS: 'epoll_wait=1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const code = await within(exited, "the proxy's exit (a silently dead engine keeps it running)", 30_000)
  t.equal(code, 2, 'exit status 2')
  t.match(stderr, /"level":50[^\n]*"reason":"epoll_wait"[^\n]*relay engine went down/, "the log's error line names the reason")
  t.match(stderr, /^error: the native relay engine went down \(epoll_wait, EBADF/m, 'and so does the exit')
})
