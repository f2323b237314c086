// TPROXY mode's flag and the addon's transparent sockets, without namespaces (loopback only).
import { Socket, createServer } from 'node:net'
import t from 'tap'
import { transparentSocket } from '../../src/native/sockopt.js'
import { parseProxyFlags } from '../../src/proxy/flags.js'
import { rootOnly } from '../helpers/root.js'

t.test('--interception-mode: REDIRECT by default; TPROXY runs as uid 0 unless --uid says otherwise', async (t) => {
  const plain = parseProxyFlags([])
  t.match(plain, { interceptionMode: 'REDIRECT', uid: 1337, gid: 1337 })
  t.match(parseProxyFlags(['--interception-mode', 'TPROXY']), { interceptionMode: 'TPROXY', uid: 0, gid: 1337 })
  t.match(parseProxyFlags(['--interception-mode', 'TPROXY', '--uid', '1500']), { uid: 1500 })
  t.throws(() => parseProxyFlags(['--interception-mode', 'tproxy']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: '--interception-mode: "tproxy" is not one of REDIRECT, TPROXY',
  })
})

t.test('transparentSocket: bad arguments are named', async (t) => {
  t.throws(() => transparentSocket(5 as unknown as string, 0, 0), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => transparentSocket('::', 70000, 0), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(
    () => transparentSocket('::', 80.5, 0),
    { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /^port must be an integer/ },
    'not truncated to 80',
  )
  t.throws(() => transparentSocket('::', 0, 1.5), { name: 'TypeError', message: /^mark must be an integer/ }, 'not truncated to 1')
  t.throws(() => transparentSocket('not-an-ip', 0, 0), { code: 'EINVAL', syscall: 'inet_pton' })
  t.throws(
    () => transparentSocket(`${'1:2:3:4:5:6:7:8'.padEnd(45, ' ')}garbage`, 0, 0),
    { code: 'EINVAL' },
    'a string too long for an address is refused, not cut',
  )
  t.throws(() => transparentSocket('ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255extra', 0, 0), { code: 'EINVAL' })
})

t.test('transparentSocket: a bound fd node:net connects (and reports refusal) without blocking', rootOnly(), async (t) => {
  const server = createServer((s) => s.end('hi'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const fd = transparentSocket('127.0.0.1', 0, 1337)
  const s = new Socket({ fd, readable: true, writable: true })
  s.connect({ host: '127.0.0.1', port })
  let body = ''
  s.setEncoding('utf8').on('data', (d: string) => (body += d))
  await new Promise((r) => s.once('close', r))
  t.equal(body, 'hi', 'connected and read through node:net')

  const closed = createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const deadPort = (closed.address() as { port: number }).port
  await new Promise((r) => closed.close(r))
  const refused = new Socket({ fd: transparentSocket('127.0.0.1', 0, 1337), readable: true, writable: true })
  refused.connect({ host: '127.0.0.1', port: deadPort })
  const err = await new Promise<NodeJS.ErrnoException>((r) => refused.once('error', r))
  t.equal(err.code, 'ECONNREFUSED', "a refused connect is node:net's ECONNREFUSED error")

  // dual-stack: IPV6_V6ONLY is off, so an IPv4 client reaches the socket bound to ::
  const dual = createServer((s) => s.end('dual'))
  await new Promise<void>((r) => dual.listen({ fd: transparentSocket('::', 0, 0) }, r))
  t.teardown(() => dual.close())
  const dualPort = (dual.address() as { port: number }).port
  t.equal((dual.address() as { family: string }).family, 'IPv6', 'the listener is bound to ::')
  const reply = await new Promise<string>((res, rej) => {
    let got = ''
    new Socket()
      .connect({ host: '127.0.0.1', port: dualPort })
      .on('data', (d) => (got += d))
      .on('end', () => res(got))
      .on('error', rej)
  })
  t.equal(reply, 'dual', 'an IPv4 connection to 127.0.0.1 reaches the dual-stack socket (IPV6_V6ONLY off)')
})
