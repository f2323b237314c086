import { createServer, connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { getMark, localAddressOf, originalDst, setMark, socketFd } from '../../src/native/sockopt.js'
import { addNetns, deleteNetns, execIn } from '../../src/lab/netns.js'
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

t.test('a connection that was not redirected has no NAT original destination', async (t) => {
  const { accepted } = await loopbackPair(t)
  // Without conntrack the kernel has no tuple (ENOENT); with it, an un-NATed tuple gives the socket's own address.
  try {
    const dst = originalDst(accepted)
    t.equal(dst.port, accepted.localPort, 'the un-NATed tuple is the listener itself')
  } catch (err) {
    t.equal((err as NodeJS.ErrnoException).code, 'ENOENT', 'ENOENT when not redirected')
  }
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
