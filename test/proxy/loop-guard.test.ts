// The loop guard matches a looped hop by the whole connection: our upstream socket's local address and port
// as the accepted peer, and its destination as the accepted connection's original destination; and only
// while that upstream is connecting or in the turn its connect completed (a looped SYN is accepted then).
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { LoopGuard } from '../../src/proxy/loop-guard.js'
import type { Endpoint } from '../../src/proxy/endpoint.js'

t.test('a tracked upstream is found by its local endpoint and destination, and forgotten at close', async (t) => {
  const server = createServer((s) => s.on('error', () => {}))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const dst: Endpoint = { address: '127.0.0.1', port, family: 4 }
  const guard = new LoopGuard()
  const owner = { onUpstreamLooped() {} }
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
