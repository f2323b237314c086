// The addon's SOCK_SEQPACKET sockets and fd passing (native/unix-fds.c): messages and fds both ways, end of
// stream, errors that name the problem, truncated messages refused with their fds closed (sent by Python's
// socket.send_fds, since our own send refuses to build them), cancel, and the fault-injection paths (under
// `npm run test:asan`, as test/native/relay-faults.test.ts).
import { spawn } from 'node:child_process'
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { addonPath } from '../../src/native/addon.js'
import {
  acceptAsync,
  recvCancel,
  recvWithFds,
  SeqpacketSocket,
  seqpacketConnect,
  seqpacketListen,
  sendWithFds,
  unixFdsFaults,
} from '../../src/native/unix-fds.js'

const openFds = (): number => readdirSync('/proc/self/fd').length

function socketPath(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'slt-unixfds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 's.sock')
}

/** A listener, a client and the accepted end, all closed at teardown. */
async function pair(t: Test): Promise<{ path: string; listener: SeqpacketSocket; client: SeqpacketSocket; server: SeqpacketSocket }> {
  const path = socketPath(t)
  const listener = new SeqpacketSocket(seqpacketListen(path, 4))
  const client = new SeqpacketSocket(seqpacketConnect(path))
  const server = new SeqpacketSocket(await listener.accept())
  t.teardown(async () => {
    await client.close()
    await server.close()
    await listener.close()
  })
  return { path, listener, client, server }
}

t.test('a message and its fd arrive; the fd is the same file, close-on-exec, and ours', async (t) => {
  const { client, server } = await pair(t)
  const file = openSync('/etc/hostname', 'r')
  t.teardown(() => closeSync(file))
  t.equal(sendWithFds(client.fd, Buffer.from('hello'), [file]), 5, 'sendWithFds returns the bytes sent')
  const m = await server.recv()
  t.equal(m?.data.toString(), 'hello')
  t.equal(m?.fds.length, 1)
  const fd = m!.fds[0]!
  t.teardown(() => closeSync(fd))
  t.not(fd, file, 'a new descriptor')
  const a = fstatSync(fd)
  const b = statSync('/etc/hostname')
  t.same([a.dev, a.ino], [b.dev, b.ino], 'same dev/ino as the file sent')
  const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!
  t.ok(parseInt(flags, 8) & 0o2000000, 'O_CLOEXEC set (MSG_CMSG_CLOEXEC)')
  sendWithFds(server.fd, Buffer.from('back'), [])
  t.same(await client.recv(), { data: Buffer.from('back'), fds: [] }, 'and the other way, without fds')
})

t.test('the peer closing is null; closing with our message unread is ECONNRESET, not EBADF', async (t) => {
  const a = await pair(t)
  const ended = a.server.recv()
  await a.client.close()
  t.equal(await ended, null, 'end of stream')
  // The peer's close raises a socket error: epoll says POLLERR, which libuv passes on as UV_EBADF.
  const b = await pair(t)
  sendWithFds(b.client.fd, Buffer.from('unread'), [])
  const reset = b.client.recv()
  await b.server.close()
  await t.rejects(reset, { code: 'ECONNRESET', syscall: 'recvmsg' })
})

t.test('bad arguments and failed syscalls are named', async (t) => {
  const path = socketPath(t)
  t.throws(() => seqpacketConnect(path), { code: 'ENOENT', syscall: 'connect' })
  t.throws(() => seqpacketConnect('/x'.repeat(60)), { code: 'ENAMETOOLONG', syscall: 'connect' })
  t.throws(() => seqpacketConnect(''), { code: 'EINVAL' })
  const l = seqpacketListen(path, 1)
  t.teardown(() => closeSync(l))
  t.throws(() => seqpacketListen(path, 1), { code: 'EADDRINUSE', syscall: 'bind' })
  t.throws(() => sendWithFds(l, Buffer.alloc(0), []), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => sendWithFds(l, Buffer.from('x'), new Array(17).fill(0)), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => sendWithFds(l, Buffer.alloc(65537), []), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => sendWithFds(l, 'x' as unknown as Buffer, []), { code: 'ERR_INVALID_ARG_TYPE', message: 'data must be a Buffer' })
  t.throws(() => sendWithFds(l, Buffer.from('x'), []), { code: 'ENOTCONN', syscall: 'sendmsg' })
  const file = openSync('/etc/hostname', 'r')
  t.teardown(() => closeSync(file))
  t.throws(() => recvWithFds(file), { code: 'EPERM', syscall: 'uv_poll_init' }, 'a regular file cannot be polled')
  t.equal(recvCancel(l), false, 'nothing to cancel')
  const waiting = acceptAsync(l)
  t.throws(() => recvWithFds(l), { code: 'EBUSY' }, 'one wait per fd')
  t.equal(recvCancel(l), true)
  await t.rejects(waiting, { code: 'ECANCELED', syscall: 'accept4' })
})

t.test('a full queue is EAGAIN, not a wait', async (t) => {
  const { client } = await pair(t)
  let sent = 0
  const err = t.throws(() => {
    for (; sent < 10000; sent++) sendWithFds(client.fd, Buffer.alloc(1024), [])
  })
  t.match(err, { code: 'EAGAIN', syscall: 'sendmsg' }, `EAGAIN after ${sent} messages`)
})

// Sends, from another process, one message of `bytes` bytes with `fds` fds, then 'after', then waits for us to close.
function pythonSender(t: Test, path: string, bytes: number, fds: number): Promise<number | null> {
  const script = [
    'import os, socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])',
    "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(int(sys.argv[3]))]",
    "socket.send_fds(s, [b'x' * int(sys.argv[2])], fds); s.send(b'after'); s.recv(1)",
  ].join('\n')
  // Without the sanitizer's preload: python never loads the addon.
  const child = spawn('python3', ['-c', script, path, String(bytes), String(fds)], {
    env: { ...process.env, LD_PRELOAD: '' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  return new Promise((resolve) => child.on('exit', resolve))
}

for (const [what, bytes, fds, message] of [
  ['more than 64 KiB', 70000, 1, 'recvmsg EMSGSIZE: message truncated: more than 65536 bytes'],
  ['more than 16 fds', 10, 20, 'recvmsg EMSGSIZE: control data truncated: more than 16 fds'],
] as const) {
  t.test(`a message with ${what} is refused (EMSGSIZE), the fds that came closed, the next one read`, async (t) => {
    const path = socketPath(t)
    const listener = new SeqpacketSocket(seqpacketListen(path, 1))
    t.teardown(() => listener.close())
    const before = openFds()
    const exited = pythonSender(t, path, bytes, fds)
    const conn = new SeqpacketSocket(await listener.accept())
    await t.rejects(conn.recv(), { code: 'EMSGSIZE', message })
    t.same(await conn.recv(), { data: Buffer.from('after'), fds: [] }, 'the socket goes on')
    t.equal(openFds(), before + 1, 'only the connection itself is open: every fd received was closed')
    await conn.close()
    t.equal(await exited, 0, 'the sender exited cleanly')
  })
}

function faultsOnly(): { skip?: string } {
  if (unixFdsFaults()) return {}
  if (process.env.SIDECAR_LAB_EXPECT_FAULTS === '1') {
    throw new Error(`SIDECAR_LAB_EXPECT_FAULTS=1 but the addon at ${addonPath()} has no fault switch (-DSIDECAR_LAB_FAULTS)`)
  }
  return { skip: `the addon at ${addonPath()} is not the fault-injection build (npm run test:asan runs these)` }
}

function withFaults(t: Test, spec: string): void {
  process.env.SIDECAR_LAB_FAULTS = spec
  unixFdsFaults()
  t.teardown(() => {
    delete process.env.SIDECAR_LAB_FAULTS
    unixFdsFaults()
  })
}

t.test('a wait that cannot be allocated throws ENOMEM', faultsOnly(), async (t) => {
  const { server } = await pair(t)
  withFaults(t, 'fds_alloc=1')
  t.throws(() => recvWithFds(server.fd), { code: 'ENOMEM', syscall: 'malloc' })
})

t.test('a message that cannot be handed to JS rejects ENOMEM and its fd is closed', faultsOnly(), async (t) => {
  const { client, server } = await pair(t)
  const file = openSync('/etc/hostname', 'r')
  t.teardown(() => closeSync(file))
  const before = openFds()
  withFaults(t, 'fds_result=1')
  sendWithFds(client.fd, Buffer.from('lost'), [file])
  await t.rejects(server.recv(), { code: 'ENOMEM', syscall: 'recvmsg' })
  t.equal(openFds(), before, 'the received fd was closed')
})

t.test('an accepted connection that cannot be handed to JS is closed: the client sees the end', faultsOnly(), async (t) => {
  const path = socketPath(t)
  const listener = new SeqpacketSocket(seqpacketListen(path, 1))
  t.teardown(() => listener.close())
  withFaults(t, 'fds_result=1')
  const client = new SeqpacketSocket(seqpacketConnect(path))
  t.teardown(() => client.close())
  await t.rejects(listener.accept(), { code: 'ENOMEM', syscall: 'accept4' })
  t.equal(await client.recv(), null, 'closed on our side')
})

t.test('a closed SeqpacketSocket refuses to send rather than write to whatever reuses its fd number', async (t) => {
  const a = await pair(t)
  const fd = a.client.fd
  await a.client.close()
  const b = await pair(t)
  t.ok([b.listener.fd, b.client.fd, b.server.fd].includes(fd), 'the number was reused by b (the precondition)')
  t.throws(() => a.client.send(Buffer.from('stale')), { code: 'EBADF', syscall: 'sendmsg' })
  await t.rejects(a.client.recv(), { code: 'EBADF', syscall: 'recvmsg' })
  sendWithFds(b.client.fd, Buffer.from('own'), [])
  t.same(await b.server.recv(), { data: Buffer.from('own'), fds: [] }, "b's peer got b's message only")
})
