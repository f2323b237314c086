// netnsSocket (native/netns.c): sockets made in a namespace the test creates, used by node:net the three ways
// ambient mode needs (a listener, a UDP socket, an outbound TCP socket), their options, their errors, and the
// relay engine's upstream socket made in the namespace (bind.netns).
import { createSocket } from 'node:dgram'
import { closeSync, openSync, readdirSync, readlinkSync, statSync } from 'node:fs'
import { createServer, connect, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { closeNetns, netnsSocket, openNetns } from '../../src/native/netns.js'
import { relayAdd, relayStats, relayStop } from '../../src/native/relay.js'
import { getMark, localAddressOf, socketFd } from '../../src/native/sockopt.js'
import { run } from '../../src/sys/exec.js'
import { addNetns, deleteNetns, execIn, netnsPath } from '../../src/sys/netns.js'
import { spawnIn } from '../helpers/pods.js'
import { drain, relayed, sha, start } from '../helpers/relay-harness.js'
import { rootOnly } from '../helpers/root.js'

const POD_IP = '198.18.77.1'
const fdCount = () => readdirSync('/proc/self/fd').length

interface Pod {
  name: string
  /** an fd of /run/netns/NAME */
  fd: number
  /** the namespace as /proc/PID/ns/net names it: net:[INODE] */
  id: string
}

/** A namespace with lo up and POD_IP on it; deleted (and its fd closed) when the test ends. */
async function pod(t: Test, tag: string): Promise<Pod> {
  const name = `slt-nns-${tag}-${process.pid % 100000}`
  t.teardown(() => deleteNetns(name))
  await addNetns(name)
  // On lo: the dummy link type needs a kernel module this host may not have, and lo is enough to be local.
  await execIn(name, ['ip', 'addr', 'add', `${POD_IP}/24`, 'dev', 'lo'])
  const fd = openNetns(netnsPath(name))
  t.teardown(() => closeNetns(fd))
  return { name, fd, id: `net:[${statSync(netnsPath(name)).ino}]` }
}

/** The socket inode ss prints (ino:N) for one of our fds. */
function inode(fd: number): string {
  const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))
  if (!m) throw new Error(`fd ${fd} is not a socket`)
  return m[1]!
}

/** An echo server on 127.0.0.1 inside the pod that first sends a line naming its namespace; its port. */
async function podEchoServer(t: Test, p: Pod): Promise<number> {
  const script = `
    const s = require('node:net').createServer((c) => { c.write(require('node:fs').readlinkSync('/proc/self/ns/net') + '\\n'); c.pipe(c) })
    s.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })))`
  const proc = spawnIn(t, p.name, ['node', '-e', script])
  return (JSON.parse(await proc.waitFor(/"port"/)) as { port: number }).port
}

/** Splits what the pod's echo server sent into its namespace line and the echoed bytes' count and hash. */
function echoed(got: Buffer): { ns: string; bytes: number; sha: string } {
  const nl = got.indexOf(10)
  return { ns: got.subarray(0, nl).toString(), bytes: got.length - nl - 1, sha: sha(got.subarray(nl + 1)) }
}

function collect(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  return new Promise((resolve, reject) => {
    s.on('end', () => resolve(Buffer.concat(chunks)))
    s.on('error', reject)
  })
}

t.test('bad options are a TypeError or RangeError naming the option, and leave no fd', async (t) => {
  const before = fdCount()
  const base = { netns: -1, family: 4, type: 'tcp' } as const
  const cases: [unknown, Exclude<Parameters<Test['throws']>[1], string | undefined>][] = [
    [undefined, { name: 'TypeError', message: /options must be an object/ }],
    [
      { family: 4, type: 'tcp' },
      { name: 'TypeError', message: /^netns must be an integer/ },
    ],
    [
      { ...base, netns: -2 },
      { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /^netns must be a file descriptor/ },
    ],
    [
      { ...base, family: 5 },
      { name: 'RangeError', message: 'family must be 4 or 6' },
    ],
    [
      { ...base, type: 'sctp' },
      { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: "type must be 'tcp' or 'udp'" },
    ],
    [
      { ...base, port: 65536 },
      { name: 'RangeError', message: 'port must be 0 to 65535' },
    ],
    [
      { ...base, port: 1.5 },
      { name: 'TypeError', message: /^port must be an integer/ },
    ],
    [
      { ...base, address: 7 },
      { name: 'TypeError', message: 'address must be a string' },
    ],
    [
      { ...base, address: '::1' },
      { name: 'TypeError', message: 'address ::1 is not an IPv4 address (family 4)' },
    ],
    [
      { ...base, address: 'pod-a' },
      { code: 'EINVAL', syscall: 'inet_pton' },
    ],
    [
      { ...base, transparent: 'yes' },
      { name: 'TypeError', message: 'transparent must be a boolean' },
    ],
    [
      { ...base, mark: 2 ** 31 },
      { name: 'TypeError', message: /^mark must be an integer/ },
    ],
    [
      { ...base, type: 'udp', listen: 8 },
      { name: 'TypeError', message: "listen needs type 'tcp'" },
    ],
    [
      { ...base, listen: -1 },
      { name: 'RangeError', message: /^listen must be 0 to/ },
    ],
  ]
  for (const [opts, want] of cases) t.throws(() => netnsSocket(opts as never), want, JSON.stringify(opts))
  t.equal(fdCount(), before, 'no fd left open')
})

t.test('netns -1: a listener in this namespace, for server.listen({ fd })', async (t) => {
  const fd = netnsSocket({ netns: -1, family: 4, type: 'tcp', address: '127.0.0.1', port: 0, listen: 16 })
  const server = createServer((c) => c.pipe(c))
  await new Promise<void>((r) => server.listen({ fd }, r))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const client = connect({ host: '127.0.0.1', port })
  const got = collect(client)
  client.end('same namespace')
  t.equal((await got).toString(), 'same namespace')
})

t.test('a listener made in the pod: listed there, not here; a client in the pod gets its bytes through', rootOnly(), async (t) => {
  const p = await pod(t, 'lis')
  const fd = netnsSocket({ netns: p.fd, family: 4, type: 'tcp', address: POD_IP, port: 15008, listen: 64, reuseAddr: true })
  const ino = inode(fd)
  const received = new Promise<{ bytes: number; sha: string; remote: string | undefined }>((resolve) => {
    const server = createServer((c) => {
      void drain(c).then(({ bytes, sha }) => resolve({ bytes, sha, remote: c.remoteAddress }))
    })
    server.listen({ fd })
    t.teardown(() => server.close())
  })
  const inPod = (await execIn(p.name, ['ss', '-ltne'])).stdout
  const here = (await run('ss', ['-ltne'])).stdout
  t.match(inPod, new RegExp(`${POD_IP.replaceAll('.', '\\.')}:15008 .* ino:${ino}\\b`), 'ss in the pod lists the listener')
  t.notMatch(here, new RegExp(`ino:${ino}\\b`), "ss in the test's namespace does not")

  const client = `
    const { randomBytes, createHash } = require('node:crypto')
    const data = randomBytes(1 << 20)
    const s = require('node:net').connect({ host: process.argv[1], port: +process.argv[2] }, () => s.end(data))
    s.on('error', (e) => { console.error(e.message); process.exit(1) })
    s.on('close', () => console.log(JSON.stringify({ bytes: data.length, sha: createHash('sha256').update(data).digest('hex') })))`
  const sent = await execIn(p.name, ['node', '-e', client, POD_IP, '15008'], { timeoutMs: 30_000 })
  t.same(await received, { ...JSON.parse(sent.stdout), remote: POD_IP }, '1 MiB arrived whole (sha256), from the pod')
})

t.test('a UDP socket made in the pod, for dgram bind({ fd })', rootOnly(), async (t) => {
  const p = await pod(t, 'udp')
  const fd = netnsSocket({ netns: p.fd, family: 4, type: 'udp', address: POD_IP, port: 15009 })
  const socket = createSocket('udp4')
  t.teardown(() => socket.close())
  const message = new Promise<{ text: string; from: string }>((r) =>
    socket.once('message', (m, rinfo) => r({ text: m.toString(), from: rinfo.address })),
  )
  await new Promise<void>((r) => socket.bind({ fd }, r))
  t.match((await execIn(p.name, ['ss', '-lune'])).stdout, new RegExp(`:15009 .* ino:${inode(fd)}\\b`), 'ss in the pod lists it')
  const send = `const s = require('node:dgram').createSocket('udp4'); s.send('datagram from the pod', 15009, process.argv[1], () => s.close())`
  await execIn(p.name, ['node', '-e', send, POD_IP], { timeoutMs: 30_000 })
  t.same(await message, { text: 'datagram from the pod', from: POD_IP })
})

t.test("a TCP socket made in the pod reaches the pod's own 127.0.0.1 through new Socket({ fd }).connect()", rootOnly(), async (t) => {
  const p = await pod(t, 'out')
  const port = await podEchoServer(t, p)
  const fd = netnsSocket({ netns: p.fd, family: 4, type: 'tcp' })
  const s = new Socket({ fd, readable: true, writable: true })
  t.teardown(() => s.destroy())
  s.connect({ host: '127.0.0.1', port })
  const got = collect(s)
  const data = Buffer.alloc(256 * 1024, 'ambient ')
  s.end(data)
  t.same(echoed(await got), { ns: p.id, bytes: data.length, sha: sha(data) }, "the pod's server (its namespace) echoed the bytes whole")
})

t.test('SO_MARK, transparent and freebind: set before bind, in the pod', rootOnly(), async (t) => {
  const p = await pod(t, 'opt')
  const marked = new Socket({ fd: netnsSocket({ netns: p.fd, family: 4, type: 'tcp', mark: 0x5a1 }) })
  t.teardown(() => marked.destroy())
  t.equal(getMark(marked), 0x5a1, 'getMark reads the mark back')

  const before = fdCount()
  const foreign = { netns: p.fd, family: 4, type: 'tcp', address: '198.18.99.9', port: 0 } as const
  t.throws(() => netnsSocket(foreign), { code: 'EADDRNOTAVAIL', errno: -99, syscall: 'bind' }, 'a non-local address, plain: EADDRNOTAVAIL')
  t.throws(() => netnsSocket({ ...foreign, family: 6, address: '2001:2::9' }), { code: 'EADDRNOTAVAIL', syscall: 'bind' }, 'IPv6 too')
  t.equal(fdCount(), before, 'the failed sockets were closed')
  for (const extra of [
    { transparent: true },
    { freebind: true },
    { transparent: true, family: 6, address: '2001:2::9' },
    { freebind: true, family: 6, address: '2001:2::9' },
  ] as const) {
    const s = new Socket({ fd: netnsSocket({ ...foreign, ...extra }) })
    t.equal(localAddressOf(s).address, extra.address ?? foreign.address, `bound with ${JSON.stringify(extra)}`)
    s.destroy()
  }
})

t.test('a netns fd that is no namespace is setns EINVAL, a closed one EBADF; nothing leaks', rootOnly(), async (t) => {
  const file = openSync(fileURLToPath(import.meta.url), 'r')
  t.teardown(() => closeSync(file))
  const before = fdCount()
  t.throws(() => netnsSocket({ netns: file, family: 4, type: 'tcp' }), { code: 'EINVAL', errno: -22, syscall: 'setns' })
  const closed = openSync(fileURLToPath(import.meta.url), 'r')
  closeSync(closed)
  t.throws(() => netnsSocket({ netns: closed, family: 4, type: 'udp' }), { code: 'EBADF', errno: -9, syscall: 'setns' })
  t.equal(fdCount(), before, 'no fd left open')
})

t.test('the relay engine with bind.netns: the upstream socket is made in the pod', rootOnly(), async (t) => {
  const p = await pod(t, 'rly')
  const port = await podEchoServer(t, p)
  start()
  t.teardown(() => relayStop())
  const r = await relayed(t, port, { netns: p.fd })
  const got = collect(r.client)
  const data = Buffer.alloc(512 * 1024, 'relay ')
  r.client.end(data)
  t.same(echoed(await got), { ns: p.id, bytes: data.length, sha: sha(data) }, "relayed to the pod's 127.0.0.1 and back, whole")
  t.equal((await r.closed).close, 'clean')

  // A bad namespace fails relayAdd itself, keeping nothing.
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
  const file = openSync(fileURLToPath(import.meta.url), 'r')
  t.teardown(() => closeSync(file))
  const before = fdCount()
  t.throws(() => relayAdd(99, socketFd(s), { address: '127.0.0.1', port, family: 4 }, { netns: file }), {
    code: 'EINVAL',
    syscall: 'setns',
  })
  t.equal(relayStats().connections, 0, 'no connection entered the relay')
  t.equal(fdCount(), before, 'the dup of the downstream fd was closed')
  t.throws(() => relayAdd(99, socketFd(s), { address: '127.0.0.1', port, family: 4 }, { netns: -2 }), {
    name: 'TypeError',
    message: /^netns must be an integer from -1/,
  })
})
