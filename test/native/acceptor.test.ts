// The native engine's accept (native/acceptor.c, issue 18): connections accepted in C and handed to JS in one call
// per round, with their addresses and SO_ORIGINAL_DST; EMFILE absorbed as libuv does and reported; the listening
// fd closed at stop; and its failure paths (native/faults.h's switch, sanitizer build only). The child processes
// run in fresh namespaces (their conntrack state is the setup's) or under their own descriptor limit.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readlinkSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { acceptorStart, acceptorStop, closeFd, fdLocalAddress } from '../../src/native/acceptor.js'
import { addonPath } from '../../src/native/addon.js'
import { faultsReset, netnsSocket } from '../../src/native/netns.js'
import { addNetns, deleteNetns, execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'

const dist = (f: string) => JSON.stringify(new URL(`../../dist/${f}`, import.meta.url).pathname)

/** A namespace with 198.18.5.1 and 2001:2::5:1 on lo, and the commands in setup run in it. */
async function namespace(t: Test, tag: string, setup: string[][] = []): Promise<string> {
  const ns = `slt-acc-${tag}-${process.pid % 100000}`
  t.teardown(() => deleteNetns(ns))
  await addNetns(ns)
  await execIn(ns, ['ip', 'link', 'set', 'lo', 'up'])
  await execIn(ns, ['ip', 'addr', 'add', '198.18.5.1/24', 'dev', 'lo'])
  await execIn(ns, ['ip', '-6', 'addr', 'add', '2001:2::5:1/64', 'dev', 'lo', 'nodad'])
  for (const argv of setup) await execIn(ns, argv)
  return ns
}

async function runIn(t: Test, ns: string, script: string): Promise<unknown> {
  const r = await execIn(ns, ['node', '--input-type=module', '-e', script], { allowFailure: true })
  t.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

t.test('20 connections waiting in the backlog: one batch of 20, each with its client address, no dst', rootOnly(), async (t) => {
  const ns = await namespace(t, 'batch')
  const script = `
    import { connect } from 'node:net'
    import { acceptorStart, acceptorStop, closeFd } from ${dist('native/acceptor.js')}
    import { netnsSocket } from ${dist('native/netns.js')}
    const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '198.18.5.1', port: 15001, listen: 64 })
    const clients = []
    for (let i = 0; i < 20; i++) clients.push(await new Promise((r) => { const c = connect(15001, '198.18.5.1', () => r(c)) }))
    const batches = []
    const done = new Promise((r) => {
      const h = acceptorStart(fd, (entries) => {
        batches.push(entries.map((e) => ({ remote: e.remote, dst: e.dst ?? null, fd: e.fd > 2 })))
        for (const e of entries) closeFd(e.fd)
        if (batches.flat().length === 20) { acceptorStop(h); r() }
      })
    })
    await done
    console.log(JSON.stringify({ batches, clients: clients.map((c) => c.localPort) }))
    process.exit(0)
  `
  const got = (await runIn(t, ns, script)) as {
    batches: { remote: { address: string; port: number; family: number }; dst: unknown; fd: boolean }[][]
    clients: number[]
  }
  t.equal(got.batches.length, 1, 'one onBatch call')
  const entries = got.batches.flat()
  t.equal(entries.length, 20)
  t.same(
    entries.map((e) => e.remote),
    got.clients.map((port) => ({ address: '198.18.5.1', port, family: 4 })),
    "each entry is a client's address and port, in the order they connected",
  )
  t.ok(
    entries.every((e) => e.dst === null && e.fd),
    'not redirected (no conntrack in the namespace): no dst; each has an fd',
  )
})

t.test('REDIRECTed IPv4 and IPv6 connections on a dual-stack listener taken from node:net: dst for each', rootOnly(), async (t) => {
  const ns = await namespace(t, 'dst', [
    ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.18.9.9', '-j', 'REDIRECT', '--to-ports', '15001'],
    ['ip6tables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '2001:2::9:9', '-j', 'REDIRECT', '--to-ports', '15001'],
    ['ip', 'route', 'add', '198.18.9.0/24', 'dev', 'lo'],
    ['ip', '-6', 'route', 'add', '2001:2::9:0/112', 'dev', 'lo'],
  ])
  const script = `
    import { createServer, connect } from 'node:net'
    import { closeFd } from ${dist('native/acceptor.js')}
    import { acceptorStop, takeOverListener } from ${dist('proxy/native-accept.js')}
    const server = createServer(() => { console.log('node:net accepted one'); process.exit(1) })
    await new Promise((r) => server.listen(15001, '::', r))
    const out = []
    let h
    const done = new Promise((r) => {
      h = takeOverListener(server, (entries) => {
        for (const e of entries) { out.push({ dst: e.dst, remote: e.remote }); closeFd(e.fd) }
        if (out.length === 2) r()
      })
    })
    const a = connect(80, '198.18.9.9').on('error', () => {})
    await new Promise((r) => a.once('connect', r))
    const b = connect(443, '2001:2::9:9').on('error', () => {})
    await done
    acceptorStop(h)
    console.log(JSON.stringify({ out, listening: server.listening, ports: [a.localPort, b.localPort] }))
    process.exit(0)
  `
  const got = (await runIn(t, ns, script)) as {
    out: { dst: unknown; remote: { address: string; port: number } }[]
    listening: boolean
    ports: number[]
  }
  t.same(
    got.out.map((e) => e.dst),
    [
      { address: '198.18.9.9', port: 80, family: 4 },
      { address: '2001:2::9:9', port: 443, family: 6 },
    ],
  )
  t.same(
    got.out.map((e) => e.remote),
    [
      { address: '::ffff:198.18.5.1', port: got.ports[0], family: 6 },
      { address: '2001:2::5:1', port: got.ports[1], family: 6 },
    ],
    'the IPv4 client as node:net names it on a dual-stack socket',
  )
  t.equal(got.listening, false, "node:net's server is closed: the acceptor took its socket")
})

t.test('out of descriptors (EMFILE): reported with the connection dropped, and the next one accepted', async (t) => {
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('prlimit', ['--nofile=100', process.execPath, '--input-type=module', '-e', emfileScript()])
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c))
    child.stderr.on('data', (c: Buffer) => (out += c))
    child.on('close', (code) => resolve({ code, out }))
  })
  t.equal(r.code, 0, r.out)
  const got = JSON.parse(r.out) as { failed: { code: string; dropped: number }[]; closed: string; accepted: boolean }
  t.same(got.failed, [{ code: 'EMFILE', dropped: 1 }], 'EMFILE reported once, the pending connection closed for it')
  t.ok(['end', 'ECONNRESET'].includes(got.closed), `the client saw its connection closed (${got.closed})`)
  t.ok(got.accepted, 'with descriptors free again, the next connection is accepted')
})

function emfileScript(): string {
  return `
    import { connect } from 'node:net'
    import { openSync, closeSync } from 'node:fs'
    import { acceptorStart, acceptorStop, closeFd, fdLocalAddress } from ${dist('native/acceptor.js')}
    import { netnsSocket } from ${dist('native/netns.js')}
    const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
    const { port } = fdLocalAddress(fd)
    const failed = []
    let accepted
    const next = new Promise((r) => (accepted = r))
    const h = acceptorStart(fd, (entries) => {
      for (const e of entries) {
        if (e.error) failed.push({ code: e.error.code, dropped: e.dropped })
        else { closeFd(e.fd); accepted(true) }
      }
    })
    const held = []
    try { for (;;) held.push(openSync('/dev/null', 'r')) } catch (err) { if (err.code !== 'EMFILE') throw err }
    closeSync(held.pop())
    const client = connect(port, '127.0.0.1')
    const closed = await new Promise((r) => { client.on('error', (e) => r(e.code)); client.on('end', () => r('end')); client.resume() })
    client.destroy()
    for (const f of held) closeSync(f)
    const second = connect(port, '127.0.0.1').on('error', () => {})
    const ok = await next
    second.destroy()
    acceptorStop(h)
    console.log(JSON.stringify({ failed, closed, accepted: ok }))
    process.exit(0)
  `
}

t.test('acceptorStop closes the listening fd: connections are refused, a second stop does nothing', async (t) => {
  const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
  const { port } = fdLocalAddress(fd)!
  const h = acceptorStart(fd, (entries) => {
    for (const e of entries) if ('fd' in e) closeFd(e.fd)
  })
  t.ok(existsSync(`/proc/self/fd/${fd}`), 'open while accepting')
  acceptorStop(h)
  t.notOk(existsSync(`/proc/self/fd/${fd}`), 'closed at stop')
  acceptorStop(h)
  const refused = await new Promise<string>((r) =>
    connect(port, '127.0.0.1')
      .once('error', (e: NodeJS.ErrnoException) => r(e.code!))
      .once('connect', () => r('connected')),
  )
  t.equal(refused, 'ECONNREFUSED')
})

t.test('bad arguments: TypeErrors naming them; a closed fd is refused and nothing is kept', async (t) => {
  t.throws(() => acceptorStart(1.5, () => {}), { name: 'TypeError', message: /listenFd must be an integer/ })
  t.throws(() => acceptorStart(3, 'x' as never), { name: 'TypeError', message: /onBatch must be a function/ })
  t.throws(() => acceptorStop({} as never), { name: 'TypeError', message: /handle must be acceptorStart's/ })
  const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 1 })
  closeFd(fd)
  t.throws(() => acceptorStart(fd, () => {}), { code: 'EBADF' })
  t.throws(() => closeFd(fd), { code: 'EBADF', syscall: 'close' })
})

function faultsOnly(): { skip?: string } {
  if (faultsReset()) return {}
  if (process.env.SIDECAR_LAB_EXPECT_FAULTS === '1') {
    throw new Error(`SIDECAR_LAB_EXPECT_FAULTS=1 but the addon at ${addonPath()} has no fault switch (-DSIDECAR_LAB_FAULTS)`)
  }
  return { skip: `the addon at ${addonPath()} is not the fault-injection build (npm run test:asan runs these)` }
}

function withFaults(t: Test, spec: string): void {
  process.env.SIDECAR_LAB_FAULTS = spec
  faultsReset()
  t.teardown(() => {
    delete process.env.SIDECAR_LAB_FAULTS
    faultsReset()
  })
}

for (const [fault, syscall] of [
  ['accept_alloc', 'malloc'],
  ['accept_external', 'napi_create_external'],
] as const) {
  t.test(`acceptorStart failing (${fault}): ENOMEM, the fd still the caller's and open`, faultsOnly(), async (t) => {
    withFaults(t, `${fault}=1`)
    const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 1 })
    t.teardown(() => existsSync(`/proc/self/fd/${fd}`) && closeFd(fd)) // closed by the stop below when it passes
    t.throws(() => acceptorStart(fd, () => {}), { code: 'ENOMEM', syscall })
    t.ok(existsSync(`/proc/self/fd/${fd}`), 'the listening fd is open')
    const h = acceptorStart(fd, () => {})
    acceptorStop(h)
    t.notOk(existsSync(`/proc/self/fd/${fd}`), 'the next start works and its stop closes it')
  })
}

t.test(
  "an entry that cannot be made (accept_batch): the round's connections closed, an uncaught error, the next round served",
  faultsOnly(),
  async (t) => {
    // In a child: the error is an uncaught exception, which tap would take for the test's own.
    const script = `
    import { connect } from 'node:net'
    import { acceptorStart, acceptorStop, closeFd, fdLocalAddress } from ${dist('native/acceptor.js')}
    import { faultsReset, netnsSocket } from ${dist('native/netns.js')}
    process.env.SIDECAR_LAB_FAULTS = 'accept_batch=1'
    faultsReset()
    const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
    const { port } = fdLocalAddress(fd)
    const uncaught = new Promise((r) => process.once('uncaughtException', (err) => r(err.code)))
    let accepted
    const next = new Promise((r) => (accepted = r))
    const h = acceptorStart(fd, (entries) => { for (const e of entries) { closeFd(e.fd); accepted(e.remote.port) } })
    const first = connect(port, '127.0.0.1')
    const closed = await new Promise((r) => { first.on('error', (e) => r(e.code)); first.on('end', () => r('end')); first.resume() })
    const code = await uncaught
    const second = connect(port, '127.0.0.1')
    await new Promise((r) => second.once('connect', r))
    const got = await next
    acceptorStop(h)
    console.log(JSON.stringify({ closed, code, next: got === second.localPort }))
    process.exit(0)
  `
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script])
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c))
      child.stderr.on('data', (c: Buffer) => (out += c))
      child.on('close', (code) => resolve({ code, out }))
    })
    t.equal(r.code, 0, r.out)
    const got = JSON.parse(r.out) as { closed: string; code: string; next: boolean }
    t.ok(['end', 'ECONNRESET'].includes(got.closed), `the client saw its connection closed (${got.closed})`)
    t.equal(got.code, 'SIDECAR_ERR_NAPI', 'the failure is an uncaught error, not silence')
    t.ok(got.next, 'the next connection is accepted')
  },
)

t.test('a round takes what the descriptor budget has room for (two each), and one when it has none', async (t) => {
  const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
  const { port } = fdLocalAddress(fd)!
  const clients = await Promise.all(
    Array.from(
      { length: 6 },
      () =>
        new Promise<Socket>((r) => {
          const c: Socket = connect(port, '127.0.0.1', () => r(c)).on('error', () => {})
        }),
    ),
  )
  t.teardown(() => clients.forEach((c) => c.destroy()))
  const budget = new Int32Array([5])
  const sizes: number[] = []
  const all = new Promise<void>((r) => {
    const h = acceptorStart(
      fd,
      (entries) => {
        sizes.push(entries.length)
        for (const e of entries) if ('fd' in e) closeFd(e.fd)
        budget[0] = 0
        if (sizes.reduce((a, b) => a + b) === 6) {
          acceptorStop(h)
          r()
        }
      },
      budget,
    )
  })
  await all
  t.same(sizes, [2, 1, 1, 1, 1], 'room for 2 whole connections (5 descriptors), then one at a time')
})

t.test("an acceptor fd given to relayAdd owned: taken without a dup and relayed; on failure it stays the caller's", async (t) => {
  const { start } = await import('../helpers/relay-harness.js')
  const { relayAdd, relayStop } = await import('../../src/native/relay.js')
  start()
  t.teardown(relayStop)
  const echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  t.teardown(() => echo.close())
  const up = { address: '127.0.0.1', port: (echo.address() as { port: number }).port, family: 4 as const }
  const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
  const { port } = fdLocalAddress(fd)!
  // descriptors open on the same socket as fd (a dup would be a second one)
  const sameSocket = (fd: number) => {
    const inode = readlinkSync(`/proc/self/fd/${fd}`)
    return readdirSync('/proc/self/fd').filter((f) => {
      try {
        return readlinkSync(`/proc/self/fd/${f}`) === inode
      } catch {
        return false
      }
    }).length
  }
  const seen: { holders: number; failed?: string | undefined }[] = []
  const h = acceptorStart(fd, (entries) => {
    for (const e of entries) {
      if (!('fd' in e)) continue
      try {
        // the first relayed, the second bound to an address this host does not have (EADDRNOTAVAIL)
        relayAdd(100 + seen.length, e.fd, up, seen.length === 0 ? {} : { address: '198.18.77.1' }, { owned: true })
        seen.push({ holders: sameSocket(e.fd) })
      } catch (err) {
        seen.push({ holders: sameSocket(e.fd), failed: (err as NodeJS.ErrnoException).code })
        closeFd(e.fd)
      }
    }
  })
  t.teardown(() => acceptorStop(h))
  const data = Buffer.alloc(100_000, 7)
  const first = connect(port, '127.0.0.1')
  const echoed = await new Promise<number>((r) => {
    let n = 0
    first.on('data', (c: Buffer) => (n += c.length)).on('end', () => r(n))
    first.end(data)
  })
  t.equal(echoed, data.length, 'relayed both ways, whole')
  const second = connect(port, '127.0.0.1')
  const ended = await new Promise<string>((r) =>
    second
      .on('error', (e: NodeJS.ErrnoException) => r(e.code!))
      .on('end', () => r('end'))
      .resume(),
  )
  t.equal(ended, 'end', 'the refused one is closed by the caller, plainly')
  t.same(
    seen,
    [{ holders: 1 }, { holders: 1, failed: 'EADDRNOTAVAIL' }],
    'one descriptor on the client socket (no dup); the refused one left open for the caller',
  )
})
