// netns_socket's failure paths that a root test on a healthy host does not reach: no thread to be had
// (pthread_create EAGAIN) and a namespace the thread may not enter (setns EPERM, as without CAP_SYS_ADMIN),
// driven by native/faults.h's switch (netns_thread=N, netns_setns=N; faultsReset() re-reads it). The switch
// exists only in the sanitizer build: these run under `npm run test:asan` and skip with the reason elsewhere.
import { closeSync, readdirSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { addonPath } from '../../src/native/addon.js'
import { closeNetns, faultsReset, netnsSocket, openNetns } from '../../src/native/netns.js'
import { relayAdd, relayStats, relayStop } from '../../src/native/relay.js'
import { socketFd } from '../../src/native/sockopt.js'
import { start } from '../helpers/relay-harness.js'
import { rootOnly } from '../helpers/root.js'

const fdCount = () => readdirSync('/proc/self/fd').length

function faultsOnly(): { skip?: string } {
  const root = rootOnly()
  if (root.skip) return root
  if (faultsReset()) return {}
  if (process.env.SIDECAR_LAB_EXPECT_FAULTS === '1') {
    throw new Error(`SIDECAR_LAB_EXPECT_FAULTS=1 but the addon at ${addonPath()} has no fault switch (-DSIDECAR_LAB_FAULTS)`)
  }
  return { skip: `the addon at ${addonPath()} is not the fault-injection build (npm run test:asan runs these)` }
}

/** These faults from now on, counters at zero; none once the test is done. The namespace: our own (root may enter it). */
function withFaults(t: Test, spec: string): number {
  process.env.SIDECAR_LAB_FAULTS = spec
  faultsReset()
  const netns = openNetns('/proc/self/ns/net')
  t.teardown(() => {
    closeNetns(netns)
    delete process.env.SIDECAR_LAB_FAULTS
    faultsReset()
  })
  return netns
}

t.test('no thread to be had: pthread_create EAGAIN on that call only, no fd left open', faultsOnly(), async (t) => {
  const netns = withFaults(t, 'netns_thread=2')
  const before = fdCount()
  const ok = netnsSocket({ netns, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 4 })
  t.ok(ok > 2, 'the first call made its socket')
  t.throws(() => netnsSocket({ netns, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 4 }), {
    code: 'EAGAIN',
    errno: -11,
    syscall: 'pthread_create',
  })
  t.equal(fdCount(), before + 1, 'only the first socket is open')
  const again = netnsSocket({ netns, family: 6, type: 'udp' })
  t.ok(again > 2, 'the third call made its socket')
  for (const fd of [ok, again]) closeSync(fd)
})

t.test('a namespace the thread may not enter: setns EPERM, no fd left open', faultsOnly(), async (t) => {
  const netns = withFaults(t, 'netns_setns=1')
  const before = fdCount()
  t.throws(() => netnsSocket({ netns, family: 4, type: 'udp', address: '127.0.0.1', port: 0 }), {
    code: 'EPERM',
    errno: -1,
    syscall: 'setns',
  })
  t.equal(fdCount(), before, 'no fd left open')
})

t.test('the relay engine: an upstream socket not to be made in the namespace fails relayAdd, keeping nothing', faultsOnly(), async (t) => {
  start()
  const netns = withFaults(t, 'netns_thread=1,netns_setns=1') // after start(), which reads the switch too; no thread: no setns counted
  t.teardown(() => relayStop())
  const accepted = new Promise<Socket>((resolve) => {
    const front = createServer({ pauseOnConnect: true }, resolve)
    front.listen(0, '127.0.0.1', () => {
      const c = connect({ port: (front.address() as { port: number }).port, host: '127.0.0.1' }).on('error', () => {})
      t.teardown(() => c.destroy())
    })
    t.teardown(() => front.close())
  })
  const s = await accepted
  t.teardown(() => s.destroy())
  const before = fdCount()
  const dst = { address: '127.0.0.1', port: 9, family: 4 } as const
  t.throws(() => relayAdd(1, socketFd(s), dst, { netns }), { code: 'EAGAIN', syscall: 'pthread_create' })
  t.throws(() => relayAdd(2, socketFd(s), dst, { netns }), { code: 'EPERM', syscall: 'setns' })
  t.equal(relayStats().connections, 0, 'no connection entered the relay')
  t.equal(fdCount(), before, 'the dup of the downstream fd was closed both times')
})
