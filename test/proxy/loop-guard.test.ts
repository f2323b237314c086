// The loop guard matches a looped hop by the whole connection: our upstream socket's local address and port
// as the accepted peer, and its destination as the accepted connection's original destination; and only
// while that upstream is connecting or in the turn its connect completed (a looped SYN is accepted then).
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import t from 'tap'
import { LoopGuard, SAME_MOMENT_MS } from '../../src/proxy/loop-guard.js'
import { TCP_ESTABLISHED, TCP_SYN_SENT, tcpInfoOf } from '../../src/native/sockopt.js'
import type { Endpoint } from '../../src/net/address.js'

t.test('a tracked upstream is found by its local endpoint and destination, and forgotten at close', async (t) => {
  const server = createServer((s) => s.on('error', () => {}))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const dst: Endpoint = { address: '127.0.0.1', port, family: 4 }
  const guard = new LoopGuard()
  const owner = { listenerKind: 'outbound' as const, onUpstreamLooped() {} }
  const upstream: Socket = connect({ host: '127.0.0.1', port })
  guard.track(upstream, dst, owner)
  // connect(2) and the tracking both run in nextTicks, before the event loop polls for the accept
  await new Promise((r) => process.nextTick(r))
  await new Promise((r) => process.nextTick(r))
  t.ok(upstream.connecting, 'still connecting')
  t.equal(guard.ownerOf('127.0.0.1', upstream.localPort, dst), owner, 'a connecting upstream is found')
  await once(upstream, 'connect')
  t.equal(guard.tracked, 1)
  const local = upstream.localPort
  t.equal(guard.ownerOf('127.0.0.1', local, dst), owner, 'the looped hop: our local endpoint, our destination')
  t.equal(guard.ownerOf('::ffff:127.0.0.1', local, dst), owner, 'an IPv4-mapped peer is the same endpoint')
  t.equal(
    guard.ownerOf('127.0.0.1', local, { ...dst, port: port + 1 }),
    undefined,
    'same source port to another destination is an application connection, not a loop',
  )
  t.equal(guard.ownerOf('127.0.0.1', local, undefined), undefined, 'a connection that was not redirected is no loop')
  t.equal(guard.ownerOf('127.0.0.2', local, dst), undefined, 'another source address is no loop')
  await new Promise((r) => setImmediate(r))
  t.equal(
    guard.ownerOf('127.0.0.1', local, dst),
    undefined,
    'an upstream connected in an earlier turn is no loop: its namesake is a NAT-rewritten app connection',
  )
  t.equal(guard.tracked, 1, 'it is still tracked')
  upstream.destroy()
  await once(upstream, 'close')
  t.equal(guard.tracked, 0, 'forgotten when the upstream socket closes')
  t.equal(guard.ownerOf('127.0.0.1', local, dst), undefined)
})

t.test('rules 4 and 5: the kernel must have finished the upstream handshake in the same moment as ours', async (t) => {
  const dst: Endpoint = { address: '198.18.0.2', port: 9207, family: 4 }
  const local: Endpoint = { address: '198.18.0.1', port: 40000, family: 4 }
  const owner = { listenerKind: 'outbound' as const, onUpstreamLooped() {} }
  const probeOf = (state: number, lastAckRecvMs: number) => ({ connecting: true, tcpInfo: () => ({ state, lastAckRecvMs }) })
  const suspect = (probe: ReturnType<typeof probeOf> | { connecting: boolean; tcpInfo: () => undefined }, acceptedAckMs?: number) => {
    const guard = new LoopGuard()
    const tracked = guard.trackUpstream(local, dst, probe, owner)
    const found = guard.ownerOf(
      local.address,
      local.port,
      dst,
      acceptedAckMs === undefined ? undefined : () => ({ state: 1, lastAckRecvMs: acceptedAckMs }),
    )
    tracked.closed()
    t.equal(guard.tracked, 0, 'closed() forgets it')
    return found
  }
  t.equal(suspect(probeOf(TCP_ESTABLISHED, 3), 2), owner, 'established, acks 1 ms apart: a loop')
  t.equal(suspect(probeOf(TCP_ESTABLISHED, 3)), owner, 'no accepted TCP_INFO (socket gone): rules 1-4 decide')
  t.equal(
    suspect(probeOf(TCP_SYN_SENT, 0), 0),
    undefined,
    'still in SYN_SENT: waiting for its real destination, so the accepted namesake is an app connection',
  )
  t.equal(suspect(probeOf(TCP_ESTABLISHED, 900), 2), undefined, 'handshakes 898 ms apart: a NAT coincidence')
  t.equal(suspect(probeOf(TCP_ESTABLISHED, 2 + SAME_MOMENT_MS), 2), owner, `exactly ${SAME_MOMENT_MS} ms apart is still the same moment`)
  t.equal(suspect({ connecting: true, tcpInfo: () => undefined }, 2), undefined, 'an upstream already gone is no loop')
})

t.test('tcpInfoOf reads a real socket: established, handshake ACK a moment ago', async (t) => {
  const server = createServer((s) => s.on('error', () => {}))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
  await once(client, 'connect')
  t.teardown(() => client.destroy())
  const info = tcpInfoOf(client)
  t.equal(info?.state, TCP_ESTABLISHED)
  t.ok(info && info.lastAckRecvMs < 10_000, `last ACK ${info?.lastAckRecvMs} ms ago`)
  client.destroy()
  await once(client, 'close')
  t.equal(tcpInfoOf(client), undefined, 'a closed socket has none')
})

t.test('an upstream that node calls connecting but whose SYN is unanswered (SYN_SENT) is no loop', async (t) => {
  // A listener that never accepts, with its accept queue full: the kernel drops further SYNs, so the next
  // connect stays in SYN_SENT, as an upstream to a loaded server does for seconds. The old guard took any
  // namesake of a connecting upstream for a loop, and reset a NAT-rewritten app connection (CI saw it).
  const py = spawn('python3', [
    '-c',
    'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)',
  ])
  t.teardown(() => py.kill())
  const [line] = (await once(py.stdout, 'data')) as [Buffer]
  const port = Number(line.toString().trim())
  const dst: Endpoint = { address: '127.0.0.1', port, family: 4 }
  const fillers: Socket[] = []
  t.teardown(() => fillers.forEach((s) => s.destroy()))
  const guard = new LoopGuard()
  const owner = { listenerKind: 'outbound' as const, onUpstreamLooped() {} }
  for (let i = 0; i < 4; i++) {
    const upstream = connect({ host: '127.0.0.1', port })
    upstream.on('error', () => {})
    fillers.push(upstream)
    guard.track(upstream, dst, owner)
  }
  await new Promise((r) => setTimeout(r, 200))
  const waiting = fillers.filter((s) => tcpInfoOf(s)?.state === TCP_SYN_SENT)
  t.ok(waiting.length > 0, `${waiting.length} of 4 connects wait in SYN_SENT`)
  for (const upstream of waiting) {
    t.ok(upstream.connecting, 'node calls it connecting')
    t.equal(guard.ownerOf('127.0.0.1', upstream.localPort, dst), undefined, 'its namesake is no loop')
  }
})

t.test('rule 6: a first match is a suspect; the loop is the suspect upstream coming back too', async (t) => {
  // Two handshakes in the same moment pass rules 1-5 whether they are a loop or a NAT coincidence in a burst.
  const dst: Endpoint = { address: '198.18.0.2', port: 9080, family: 4 }
  const probe = { connecting: true, tcpInfo: () => ({ state: TCP_ESTABLISHED, lastAckRecvMs: 5 }) }
  const accepted = () => ({ state: TCP_ESTABLISHED, lastAckRecvMs: 5 })
  const looped: string[] = []
  const ownerNamed = (name: string, listenerKind: 'inbound' | 'outbound') => ({ listenerKind, onUpstreamLooped: () => looped.push(name) })
  const guard = new LoopGuard()
  const app = ownerNamed('app connection', 'inbound')
  guard.trackUpstream({ address: '198.18.0.1', port: 40000, family: 4 }, dst, probe, app)
  const first = guard.verdict('198.18.0.1', 40000, dst, accepted)
  t.same(first, { kind: 'suspect', of: app }, 'the first match is proxied as a suspect, not refused')
  t.same(looped, [], 'nobody is told of a loop yet')
  // A NAT coincidence ends here: the suspect's own upstream goes to its real destination and never returns.
  const hop = ownerNamed('first hop', 'outbound')
  guard.suspected(hop, app)
  guard.trackUpstream({ address: '198.18.0.1', port: 40001, family: 4 }, dst, probe, hop)
  t.same(guard.verdict('198.18.0.1', 40002, dst, accepted), { kind: 'none' }, 'an unrelated connection is no suspect')
  const second = guard.verdict('198.18.0.1', 40001, dst, accepted)
  t.same(second, { kind: 'loop', chain: [app, hop] }, "the suspect's upstream came back: a loop, its origin first, then the suspect")
  const other = ownerNamed('another app connection', 'outbound')
  guard.trackUpstream({ address: '198.18.0.1', port: 40003, family: 4 }, dst, probe, other)
  t.same(guard.verdict('198.18.0.1', 40003, dst, accepted), { kind: 'suspect', of: other }, 'a match of a non-suspect is a suspect again')
})
