import { createServer, connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { getSystemErrorName } from 'node:util'
import { getMark, localAddressOf, originalDst, setMark, socketFd, transparentSocket } from '../../src/native/sockopt.js'
import { addNetns, deleteNetns, execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'

async function loopbackPair(t: Test): Promise<{ accepted: Socket; client: Socket }> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const accepted = new Promise<Socket>((r) => server.once('connection', r))
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  const a = await accepted
  t.teardown(() => {
    a.destroy()
    client.destroy()
    server.close()
  })
  return { accepted: a, client }
}

// Runs originalDst on one loopback connection inside a fresh namespace (optionally after some netfilter setup)
// and returns what it gave: the address, 'undefined', or the error's code. A fresh namespace has no conntrack
// hooks until a table that needs them is loaded, so the outcome is fixed by the setup, not by the host.
async function originalDstIn(t: Test, tag: string, setup: string[][]): Promise<unknown> {
  const ns = `slt-ad-${tag}-${process.pid % 100000}`
  t.teardown(() => deleteNetns(ns))
  await addNetns(ns)
  await execIn(ns, ['ip', 'link', 'set', 'lo', 'up'])
  await execIn(ns, ['ip', 'addr', 'add', '198.18.5.1/24', 'dev', 'lo'])
  for (const argv of setup) await execIn(ns, argv)
  const script = `
    import { createServer, connect } from 'node:net'
    import { originalDst } from ${JSON.stringify(new URL('../../dist/native/sockopt.js', import.meta.url).pathname)}
    const server = createServer((s) => {
      let out
      try { out = originalDst(s) ?? 'undefined' } catch (err) { out = { code: err.code } }
      console.log(JSON.stringify(out))
      process.exit(0)
    })
    server.listen(15001, '198.18.5.1', () => connect(15001, '198.18.5.1').on('error', () => {}))
    setTimeout(() => process.exit(1), 5000)
  `
  const r = await execIn(ns, ['node', '--input-type=module', '-e', script], { allowFailure: true })
  t.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

t.test('not redirected, without conntrack: originalDst is undefined, not an exception', rootOnly(), async (t) => {
  t.equal(await originalDstIn(t, 'bare', []), 'undefined')
})

t.test('not redirected, with conntrack (a nat table that does not match): the un-NATed tuple is the listener', rootOnly(), async (t) => {
  const nat = ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.18.9.9', '-j', 'REDIRECT', '--to-ports', '15001']
  t.same(await originalDstIn(t, 'ct', [nat]), { address: '198.18.5.1', port: 15001, family: 4 })
})

t.test('local address and fd come from the real socket', async (t) => {
  const { accepted } = await loopbackPair(t)
  t.ok(socketFd(accepted) > 2)
  t.same(localAddressOf(accepted), { address: '127.0.0.1', port: accepted.localPort, family: 4 })
})

t.test('SO_MARK needs CAP_NET_ADMIN and reads back', rootOnly(), async (t) => {
  const { client } = await loopbackPair(t)
  setMark(client, 1337)
  t.equal(getMark(client), 1337)
})

t.test('a number that is not an int32 is refused with a TypeError naming the argument, not truncated', async (t) => {
  const { client } = await loopbackPair(t)
  for (const bad of [3.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, -(2 ** 31) - 1]) {
    t.throws(
      () => setMark(client, bad),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /^mark must be an integer/ },
      String(bad),
    )
  }
  t.throws(() => setMark(client, '7' as unknown as number), { name: 'TypeError', message: /^mark must be an integer/ })
})

t.test('an errno becomes the error code libuv names, with its message', rootOnly(), async (t) => {
  const held = createServer()
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r))
  t.teardown(() => held.close())
  const port = (held.address() as { port: number }).port
  let err: NodeJS.ErrnoException = new Error('did not throw')
  try {
    transparentSocket('127.0.0.1', port, 0)
  } catch (e) {
    err = e as NodeJS.ErrnoException
  }
  t.match(err, { code: 'EADDRINUSE', errno: -98, syscall: 'bind' })
  t.equal(err.code, getSystemErrorName(err.errno ?? 0), "the code is node's name for the errno")
  t.equal(err.message, 'bind EADDRINUSE: address already in use', "the message reads like node's own system errors")
})

t.test('a destroyed socket gives EBADF, not a crash', async (t) => {
  const { client } = await loopbackPair(t)
  client.destroy()
  t.throws(() => originalDst(client), { code: 'EBADF' })
})

t.test('SO_ORIGINAL_DST recovers a REDIRECTed destination (IPv4 and IPv6)', rootOnly(), async (t) => {
  const ns = `slt-so-${process.pid % 100000}`
  t.teardown(() => deleteNetns(ns))
  await addNetns(ns)
  await execIn(ns, ['ip', 'addr', 'add', '198.18.5.1/24', 'dev', 'lo'])
  await execIn(ns, ['ip', '-6', 'addr', 'add', '2001:2::5:1/64', 'dev', 'lo'])
  await execIn(ns, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.18.9.9', '-j', 'REDIRECT', '--to-ports', '15001'])
  await execIn(ns, ['ip6tables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '2001:2::9:9', '-j', 'REDIRECT', '--to-ports', '15001'])
  await execIn(ns, ['ip', 'route', 'add', '198.18.9.0/24', 'dev', 'lo'])
  await execIn(ns, ['ip', '-6', 'route', 'add', '2001:2::9:0/112', 'dev', 'lo'])
  // A tiny server inside the namespace reports what the wrapper recovers.
  const script = `
    import { createServer, connect } from 'node:net'
    import { originalDst } from ${JSON.stringify(new URL('../../dist/native/sockopt.js', import.meta.url).pathname)}
    const out = []
    const server = createServer((s) => { out.push(originalDst(s)); s.destroy(); if (out.length === 2) { console.log(JSON.stringify(out)); process.exit(0) } })
    server.listen(15001, '::', () => { connect(80, '198.18.9.9').on('error', () => {}); setTimeout(() => connect(443, '2001:2::9:9').on('error', () => {}), 100) })
    setTimeout(() => { console.log(JSON.stringify(out)); process.exit(1) }, 5000)
  `
  const r = await execIn(ns, ['node', '--input-type=module', '-e', script], { allowFailure: true })
  t.equal(r.code, 0, r.stderr)
  t.same(JSON.parse(r.stdout), [
    { address: '198.18.9.9', port: 80, family: 4 },
    { address: '2001:2::9:9', port: 443, family: 6 },
  ])
})
