// A burst of DNS queries to an upstream that never answers, in a sidecar with RLIMIT_NOFILE 1024. The
// forwarder opens a socket per query and holds it until the upstream timeout; uncapped, it took every
// descriptor, so relayed TCP connections failed with no access-log line and no counter, and the admin port
// stopped answering. The forwarder now takes a bounded share of the descriptor budget (fd-budget.ts):
// queries over it get SERVFAIL at once and are counted in dns.forward_overflow, and the listeners keep theirs.
import t from 'tap'
import { join } from 'node:path'
import { adminStats, curlIn, podPair, repoRoot, spawnIn, startSidecar } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { fdCount, pidOf, startWrappedSidecar, until } from '../helpers/faults.js'

const app = join(repoRoot, 'test/helpers/apps/nat-clash.mjs')
const QUERIES = 2000

// One UDP socket sending QUERIES queries (distinct IDs) to the DNS proxy, 20 every 5 ms so the proxy's
// receive buffer drops none; then it counts the replies' rcodes and prints them when asked (SIGUSR2).
const burst = `
const s = require('dgram').createSocket('udp4')
const rcodes = {}
s.on('message', (m) => { const r = m.readUInt16BE(2) & 15; rcodes[r] = (rcodes[r] || 0) + 1 })
function query(id) {
  const name = Buffer.from('\\x02db\\x03lab\\x04test\\x00', 'latin1')
  const b = Buffer.alloc(12 + name.length + 4)
  b.writeUInt16BE(id, 0); b.writeUInt16BE(0x0100, 2); b.writeUInt16BE(1, 4)
  name.copy(b, 12); b.writeUInt16BE(1, 12 + name.length); b.writeUInt16BE(1, 14 + name.length)
  return b
}
let id = 0
const timer = setInterval(() => {
  for (let i = 0; i < 20 && id < ${QUERIES}; i++) s.send(query(++id), 15053, '127.0.0.1')
  if (id >= ${QUERIES}) { clearInterval(timer); console.log(JSON.stringify({ event: 'sent', id })) }
}, 5)
process.on('SIGUSR2', () => console.log(JSON.stringify({ event: 'replies', rcodes })))
`

t.test(
  `${QUERIES} DNS queries to a silent upstream under --nofile=1024: the forwarder keeps to its share, relayed connections and the admin port work`,
  rootOnly(),
  async (t) => {
    const { client, server } = await podPair(t)
    const srv = spawnIn(t, server.ns, ['node', app, 'server', '9207', '9208'])
    await srv.waitFor(/"port":9208/)
    // the upstream: a bound UDP socket that reads nothing and answers nothing
    const silent = spawnIn(t, client.ns, [
      'node',
      '-e',
      `require('dgram').createSocket('udp4').bind(5399, '127.0.0.1', () => console.log('{"event":"bound"}'))`,
    ])
    await silent.waitFor(/"bound"/)
    const sidecar = await startWrappedSidecar(
      t,
      client,
      ['prlimit', '--nofile=1024:1024'],
      ['--dns-upstream', '127.0.0.1:5399', '--dns-timeout', '60s'],
    )
    await startSidecar(t, server)

    const app53 = spawnIn(t, client.ns, ['node', '-e', burst], { uid: 1000, gid: 1000 })
    await app53.waitFor(/"sent"/, 'stdout', 30_000)
    // the forwards hold their sockets (the descriptors show it, whether or not the admin port still answers)
    const pid = pidOf(sidecar)
    await until(
      'the forwarder holds 200 sockets',
      () => fdCount(pid) >= 200,
      30_000,
      () => fdCount(pid),
    )

    const run = spawnIn(t, client.ns, ['node', app, 'client', server.ip, '9208', '0', '9207', '50', '1'], { uid: 1000, gid: 1000 })
    const batch = JSON.parse(await run.waitFor(/"batch"/, 'stdout', 60_000)) as { held: number; failures: Record<string, number> }
    t.same(batch.failures, {}, 'no relayed connection failed while the upstream holds the forwards')
    t.equal(batch.held, 50, 'all 50 relayed connections were served')

    t.equal((await curlIn(client, 'http://127.0.0.1:15000/ready')).body.trim(), 'LIVE', 'the admin port answers')
    const stats = await adminStats(client)
    const overflow = stats['dns.forward_overflow'] ?? 0
    t.ok(overflow > 0, `queries over the forwarder's share were counted (${overflow})`)
    t.ok(overflow < QUERIES, 'and the share itself was used')
    t.equal(stats['sidecar.fd_exhausted'] ?? 0, 0, 'no socket hit EMFILE')
    app53.child.kill('SIGUSR2')
    const replies = JSON.parse(await app53.waitFor(/"replies"/)) as { rcodes: Record<string, number> }
    t.equal(replies.rcodes['2'], overflow, 'each query over the share got SERVFAIL at once')
  },
)
