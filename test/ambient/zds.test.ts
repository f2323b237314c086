// ZDS both ways over a real SOCK_SEQPACKET socket: ZdsServer (istio-cni's side) and ZdsClient (ztunnel's). The
// pods' netns files are real namespaces (ip netns add) as root; unprivileged, a temp file stands in as "the
// fd", since what is checked is that the very file opened by the server reaches the handler (same dev/ino).
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { ZdsClient, ZdsServer, type ZdsHandler, type ZdsNack, type ZdsPod, type ZdsWorkload } from '../../src/ambient/zds.js'
import { SeqpacketSocket, seqpacketConnect, seqpacketListen, sendWithFds } from '../../src/native/unix-fds.js'
import { addNetns, deleteNetns, netnsPath } from '../../src/sys/netns.js'

const asRoot = process.getuid?.() === 0
const openFds = (): number => readdirSync('/proc/self/fd').length

/** A folder for the socket and, unprivileged, the stand-in netns files; n netns paths. */
async function place(t: Test, n: number): Promise<{ socket: string; netns: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'slt-zds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const netns: string[] = []
  for (let i = 0; i < n; i++) {
    if (asRoot) {
      const name = `slt-zds-${process.pid % 100000}-${i}`
      t.teardown(() => deleteNetns(name))
      await addNetns(name)
      netns.push(netnsPath(name))
    } else {
      const file = join(dir, `netns-${i}`)
      writeFileSync(file, `stand-in netns ${i} (not root: no ip netns add)\n`)
      netns.push(file)
    }
  }
  return { socket: join(dir, 'zds.sock'), netns }
}

const pod = (uid: string, netnsPath: string): ZdsPod => ({
  uid,
  name: `pod-${uid}`,
  namespace: 'lab',
  serviceAccount: 'sa-' + uid,
  netnsPath,
})

/** A handler that keeps each fd (closing it on del and at teardown) and can be told to refuse adds. */
function recorder(t: Test): ZdsHandler & { held: Map<string, ZdsWorkload>; log: string[]; refuse: string } {
  const h = {
    held: new Map<string, ZdsWorkload>(),
    log: [] as string[],
    refuse: '',
    add(w: ZdsWorkload) {
      if (h.refuse) throw new Error(h.refuse)
      const old = h.held.get(w.uid)
      if (old) closeSync(old.netnsFd)
      h.held.set(w.uid, w)
      h.log.push(`add ${w.uid}`)
    },
    del(uid: string) {
      closeSync(h.held.get(uid)!.netnsFd)
      h.held.delete(uid)
      h.log.push(`del ${uid}`)
    },
    snapshotSent(uids: string[]) {
      h.log.push(`snapshot ${uids.join(',')}`)
    },
  }
  t.teardown(() => h.held.forEach((w) => closeSync(w.netnsFd)))
  return h
}

function sameFile(fd: number, path: string): boolean {
  const a = fstatSync(fd)
  const b = statSync(path)
  return a.dev === b.dev && a.ino === b.ino
}

t.test('snapshot of 2 pods on connect, then add, then del; each fd is the pod netns file', async (t) => {
  const before = openFds()
  const { socket, netns } = await place(t, 3)
  const server = new ZdsServer({ path: socket })
  server.listen()
  await server.addPod(pod('a', netns[0]!))
  await server.addPod(pod('b', netns[1]!))
  const h = recorder(t)
  const client = new ZdsClient({ path: socket, handler: h })
  const snapshot = once(client, 'snapshot')
  client.start()
  t.same((await snapshot)[0], ['a', 'b'], 'the snapshot names both pods')
  t.same(h.log, ['add a', 'add b', 'snapshot a,b'])
  t.same(h.held.get('a')!.workload, { name: 'pod-a', namespace: 'lab', serviceAccount: 'sa-a' }, 'workload info arrives')
  t.ok(sameFile(h.held.get('a')!.netnsFd, netns[0]!), "a's fd is a's netns (dev/ino)")
  t.ok(sameFile(h.held.get('b')!.netnsFd, netns[1]!), "b's fd is b's netns (dev/ino)")
  t.equal(await server.addPod(pod('c', netns[2]!)), true, 'a later add is acked')
  t.ok(sameFile(h.held.get('c')!.netnsFd, netns[2]!), "c's fd is c's netns")
  t.equal(await server.removePod('a'), 1, 'del acked by the one connection')
  t.same(h.log.slice(3), ['add c', 'del a'])
  t.same(client.workloads().sort(), ['b', 'c'])
  await client.close()
  await server.close()
  h.held.forEach((w) => closeSync(w.netnsFd))
  h.held.clear()
  t.equal(openFds(), before, 'no fd left open by server, client or addon')
})

t.test('the agent restarts: the client reconnects, gets the snapshot again and drops what it no longer names', async (t) => {
  const { socket, netns } = await place(t, 2)
  const h = recorder(t)
  const first = new ZdsServer({ path: socket })
  first.listen()
  await first.addPod(pod('a', netns[0]!))
  await first.addPod(pod('b', netns[1]!))
  const client = new ZdsClient({ path: socket, handler: h, initialDelayMs: 5, maxDelayMs: 50 })
  t.teardown(() => client.close())
  const acked = once(first, 'snapshot')
  client.start()
  await acked
  const disconnected = once(client, 'disconnected')
  await first.close()
  t.equal((await disconnected)[0], 'the node agent closed the connection', 'the client saw the agent go')
  const second = new ZdsServer({ path: socket })
  t.teardown(() => second.close())
  await second.addPod(pod('a', netns[0]!)) // held before any ztunnel connects: resolves false, goes in the snapshot
  second.listen()
  const [uids] = await once(client, 'snapshot')
  t.same(uids, ['a'], 'the second snapshot names a only')
  t.same(h.log, ['add a', 'add b', 'snapshot a,b', 'add a', 'del b', 'snapshot a'], 'b reconciled away')
  t.ok(sameFile(h.held.get('a')!.netnsFd, netns[0]!), "the resent fd is a's netns")
})

t.test('a second ztunnel connecting gets the whole snapshot too', async (t) => {
  const { socket, netns } = await place(t, 1)
  const server = new ZdsServer({ path: socket })
  t.teardown(() => server.close())
  server.listen()
  await server.addPod(pod('a', netns[0]!))
  for (const round of [1, 2]) {
    const h = recorder(t)
    const client = new ZdsClient({ path: socket, handler: h })
    const snap = once(client, 'snapshot')
    client.start()
    t.same((await snap)[0], ['a'], `client ${round}: snapshot`)
    await client.close()
  }
})

t.test("a handler's error is a nack whose text reaches the server; the refused fd is closed", async (t) => {
  const { socket, netns } = await place(t, 1)
  const server = new ZdsServer({ path: socket })
  t.teardown(() => server.close())
  server.listen()
  const h = recorder(t)
  const client = new ZdsClient({ path: socket, handler: h })
  t.teardown(() => client.close())
  const snap = once(client, 'snapshot')
  client.start()
  await snap
  const before = openFds()
  h.refuse = 'no room for this pod'
  const nack = once(server, 'nack')
  await t.rejects(server.addPod(pod('x', netns[0]!)), {
    code: 'SIDECAR_ERR_ZDS_NACK',
    ackError: 'add of x: no room for this pod',
  })
  t.match((await nack)[0] as ZdsNack, { request: 'add', uid: 'x', error: 'add of x: no room for this pod' })
  t.equal(openFds(), before, 'neither side kept an fd of the refused add')
  t.same(client.workloads(), [], 'nothing held')
  await t.rejects(server.removePod('x'), { code: 'SIDECAR_ERR_ZDS_NACK', ackError: 'del of unknown uid x' })
})

// A hand-made node agent: sends raw packets and reads the client's answers.
t.test('malformed requests are nacked with their reason, extra fds closed, and the client goes on', async (t) => {
  const { socket, netns } = await place(t, 1)
  const listener = new SeqpacketSocket(seqpacketListen(socket, 4))
  t.teardown(() => listener.close())
  const h = recorder(t)
  const client = new ZdsClient({ path: socket, handler: h })
  t.teardown(() => client.close())
  client.start()
  const conn = new SeqpacketSocket(await listener.accept())
  t.teardown(() => conn.close())
  t.same(JSON.parse((await conn.recv())!.data.toString()), { version: 'V1' }, 'hello first')
  const fd = () => {
    const n = openSync(netns[0]!, 'r')
    t.teardown(() => closeSync(n))
    return n
  }
  const add = JSON.stringify({ add: { uid: 'p', workload_info: { name: 'n', namespace: 's', service_account: 'a' } } })
  const cases: [string, number[], RegExp | string][] = [
    ['not json {', [], /^message is not JSON/],
    ['[1,2]', [], 'message is not a JSON object'],
    ['{"bogus":{}}', [], "unknown message type 'bogus'"],
    ['{"add":{"uid":"p"}}', [fd()], 'add.workload_info is missing'],
    [add, [], "add of p carries 0 fds, wants exactly 1 (the pod's netns)"],
    [add, [fd(), fd()], "add of p carries 2 fds, wants exactly 1 (the pod's netns)"],
    ['{"del":{"uid":"nobody"}}', [], 'del of unknown uid nobody'],
    ['{"del":{"uid":"p"}}', [fd()], 'del carries 1 fds, wants none'],
    ['{"del":{}}', [], 'del.uid must be a string'],
  ]
  const baseline = openFds()
  for (const [data, fds, error] of cases) {
    sendWithFds(conn.fd, Buffer.from(data), fds)
    const ack = JSON.parse((await conn.recv())!.data.toString()) as { ack: { error: string } }
    t.match(ack.ack.error, error, `${data.slice(0, 40)} with ${fds.length} fds: nacked`)
  }
  t.equal(openFds(), baseline, 'every fd sent with a bad request was closed by the client')
  sendWithFds(conn.fd, Buffer.from(add), [fd()])
  t.same(JSON.parse((await conn.recv())!.data.toString()), { ack: { error: '' } }, 'a good add after them is acked')
  t.same(h.log, ['add p'])
  sendWithFds(conn.fd, Buffer.from('{"snapshot_sent":{}}'), [])
  t.same(JSON.parse((await conn.recv())!.data.toString()), { ack: { error: '' } }, 'snapshot_sent acked')
  sendWithFds(conn.fd, Buffer.from('{"snapshot_sent":{}}'), [])
  t.match(JSON.parse((await conn.recv())!.data.toString()), { ack: { error: 'snapshot_sent after snapshot_sent' } })
})

t.test('the server hangs up on a hello that is not V1, a missing ack and a message nobody asked for', async (t) => {
  const { socket, netns } = await place(t, 1)
  const server = new ZdsServer({ path: socket, ackTimeoutMs: 300 })
  t.teardown(() => server.close())
  server.listen()
  const connect = (): SeqpacketSocket => {
    const c = new SeqpacketSocket(seqpacketConnect(socket))
    t.teardown(() => c.close())
    return c
  }
  const v2 = connect()
  let gone = once(server, 'disconnect')
  v2.send(Buffer.from('{"version":"V2"}'))
  t.equal(await v2.recv(), null, 'V2 hello: hung up')
  t.match((await gone)[1], /closed|ECANCELED/)

  await server.addPod(pod('a', netns[0]!))
  const mute = connect()
  gone = once(server, 'disconnect')
  mute.send(Buffer.from('{"version":"V1"}'))
  const add = await mute.recv()
  add!.fds.forEach((fd) => closeSync(fd))
  t.match(JSON.parse(add!.data.toString()), { add: { uid: 'a' } }, 'the snapshot starts')
  t.equal(await mute.recv(), null, 'no ack: hung up')
  await gone

  const chatty = connect()
  gone = once(server, 'disconnect')
  chatty.send(Buffer.from('{"version":"V1"}'))
  let m = await chatty.recv()
  m!.fds.forEach((fd) => closeSync(fd))
  chatty.send(Buffer.from('{"ack":{"error":""}}'))
  m = await chatty.recv()
  t.same(JSON.parse(m!.data.toString()), { snapshot_sent: {} })
  chatty.send(Buffer.from('{"ack":{"error":""}}'))
  chatty.send(Buffer.from('{"ack":{"error":"unasked"}}'))
  t.equal(await chatty.recv(), null, 'unasked-for message: hung up')
  t.match((await gone)[1], /^unexpected message from ztunnel: \{"ack":\{"error":"unasked"\}\}/)
})

t.test('the client gives up after maxAttempts failed connects, with the last error', async (t) => {
  const { socket } = await place(t, 0)
  const client = new ZdsClient({ path: socket, handler: recorder(t), initialDelayMs: 1, maxDelayMs: 4, maxAttempts: 3 })
  t.teardown(() => client.close())
  const gaveUp = once(client, 'gaveUp')
  client.start()
  t.match((await gaveUp)[0], { code: 'ENOENT', syscall: 'connect' })
})

t.test('no fd growth over 20 add/del rounds and a reconnect', async (t) => {
  const { socket, netns } = await place(t, 1)
  const before = openFds()
  const server = new ZdsServer({ path: socket })
  server.listen()
  const h = recorder(t)
  const client = new ZdsClient({ path: socket, handler: h })
  const snap = once(client, 'snapshot')
  client.start()
  await snap
  for (let i = 0; i < 20; i++) {
    await server.addPod(pod(`u${i}`, netns[0]!))
    await server.removePod(`u${i}`)
  }
  t.equal(h.held.size, 0)
  await client.close()
  await server.close()
  t.equal(openFds(), before, '/proc/self/fd as before')
})
