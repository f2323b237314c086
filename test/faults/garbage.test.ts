// Hostile bytes straight at the sidecar's ports: random data to 15001 and 15006 (never a redirected
// connection, so never proxied anywhere), and to the admin, health and metrics ports. Each asserts that every
// connection is closed, what the access log and counters say, and that the sidecar goes on serving.
import t, { type Test } from 'tap'
import { adminStats, curlIn, eventually, podPair, runClient, startSidecar, type Pod, type SidecarProc } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { event, faultClient, faultServer, mesh, running } from '../helpers/faults.js'

const N = 20
interface Garbage {
  ends: number
  resets: number
  timeouts: number
  received: number
}

/** N connections of 16 KB of random bytes from pod to host:port; each must be closed, with nothing sent back. */
async function garbage(t: Test, from: Pod, host: string, port: number, replies = false): Promise<void> {
  const g = await event<Garbage>(faultClient(t, from, host, port, 'garbage', [N, 16384]), 'result', 60_000)
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
  t.equal(g.ends + g.resets, N, `${where}: all ${N} connections closed by the sidecar (${g.ends} FIN, ${g.resets} reset)`)
  t.equal(g.timeouts, 0, `${where}: none left hanging`)
  if (!replies) t.equal(g.received, 0, `${where}: not a byte came back`)
}

async function stillServes(t: Test, client: Pod, server: Pod, sidecars: SidecarProc[]) {
  t.ok(sidecars.every(running), 'the sidecars are still up')
  await faultServer(t, server, 9080, 'echo')
  const r = await runClient(t, client, server.ip, 9080, 1_000_000)
  t.equal(r.receivedSha256, r.sentSha256, 'and proxy the next connection intact (sha256)')
}

t.test(
  "random bytes to 15001/15006 under the capture rules: BlackHoleCluster (UH, the listener's own port), counted, nothing proxied",
  rootOnly(),
  async (t) => {
    const { client, server, outbound, inbound } = await mesh(t)
    const targets = [
      [client, '127.0.0.1', 15001],
      [client, '127.0.0.1', 15006],
      [client, '::1', 15001],
      [server, client.ip, 15006], // from the other pod: through its outbound sidecar, then the inbound capture
    ] as const
    for (const [from, host, port] of targets) await garbage(t, from, host, port)
    const lines = await eventually(() => {
      const l = outbound.accessLines().filter((x) => x.includes('BlackHoleCluster'))
      return l.length >= targets.length * N && l
    })
    t.equal(lines.length, targets.length * N, `${targets.length * N} connections logged to BlackHoleCluster`)
    t.ok(
      lines.every((l) => / UH - destination_is_proxy_listener /.test(l) && / 0 0 \d+ - /.test(l)),
      'each as UH destination_is_proxy_listener with 0 bytes either way',
    )
    const stats = await adminStats(client)
    t.equal(
      stats['tcp.BlackHoleCluster.downstream_cx_no_route'],
      targets.length * N,
      'tcp.BlackHoleCluster.downstream_cx_no_route counts them',
    )
    t.notOk(
      outbound.accessLines().some((l) => /PassthroughCluster/.test(l)),
      "the client pod's sidecar proxied none of them (no Passthrough line)",
    )
    await stillServes(t, client, server, [outbound, inbound])
  },
)

t.test(
  'random bytes to 15001/15006 of a pod without capture rules (no original destination): BlackHoleCluster NR, counted',
  rootOnly(),
  async (t) => {
    const { client, server } = await podPair(t, { rules: false })
    const sidecar = await startSidecar(t, server)
    for (const port of [15001, 15006]) await garbage(t, client, server.ip, port)
    const lines = await eventually(() => {
      const l = sidecar.accessLines()
      return l.length >= 2 * N && l
    })
    t.ok(
      lines.every((l) => / NR - no_original_dst .* BlackHoleCluster /.test(l)),
      `all ${lines.length} logged as NR no_original_dst to BlackHoleCluster`,
    )
    const stats = await adminStats(server)
    t.equal(stats['listener.[__]_15001.no_filter_chain_match'], N, 'virtualOutbound counted its no_filter_chain_match')
    t.equal(stats['listener.[__]_15006.no_filter_chain_match'], N, 'virtualInbound counted its no_filter_chain_match')
    t.equal(stats['tcp.BlackHoleCluster.downstream_cx_no_route'], 2 * N, 'tcp.BlackHoleCluster.downstream_cx_no_route counts both')
    t.ok(running(sidecar), 'the sidecar is still up')
  },
)

t.test(
  'random bytes to the admin, health, Prometheus and merged-metrics ports: closed, and the ports answer after',
  rootOnly(),
  async (t) => {
    const { client, server, outbound, inbound } = await mesh(t)
    // garbage() returns once the port closed every connection: the next requests come after
    for (const port of [15000, 15021, 15090, 15020]) await garbage(t, client, '127.0.0.1', port, true)
    t.equal((await curlIn(client, 'http://127.0.0.1:15000/ready')).body.trim(), 'LIVE', 'admin /ready answers LIVE')
    t.equal((await curlIn(client, 'http://127.0.0.1:15021/healthz/ready')).status, 200, 'health /healthz/ready answers 200')
    t.match((await curlIn(client, 'http://127.0.0.1:15090/stats/prometheus')).body, /envoy_/, 'Prometheus still renders')
    await stillServes(t, client, server, [outbound, inbound])
  },
)
