// The admin, health and metrics ports of real sidecars in two namespaced pods with the seed's capture rules.
import { existsSync, renameSync, readFileSync } from 'node:fs'
import parse from 'parse-prometheus-text-format'
import t from 'tap'
import { adminStats, curlIn, eventually, podPair, runClient, startServerApp, startSidecar, waitForStat } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const N = 5
const M = 10_000
const L = '[__]_15001'

t.test(`${N} connections of ${M} bytes: counters, bytes and Istio metrics equal what was sent`, rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  await startSidecar(t, client)
  await startSidecar(t, server)
  for (let i = 0; i < N; i++) t.equal((await runClient(t, client, server.ip, 9080, M)).received, M, `connection ${i + 1} echoed`)
  await runClient(t, client, server.ip, 9999, 100) // nothing listens: the inbound sidecar fails to connect

  const out = await waitClosed(client, `listener.${L}.downstream_cx_active`, N + 1)
  t.equal(out[`listener.${L}.downstream_cx_total`], N + 1)
  t.equal(out['cluster.PassthroughCluster.upstream_cx_total'], N + 1)
  t.equal(out['tcp.PassthroughCluster.downstream_cx_rx_bytes_total'], N * M + 100, 'bytes from the client')
  t.equal(out['tcp.PassthroughCluster.downstream_cx_tx_bytes_total'], N * M, 'bytes back to the client')
  t.equal(out['cluster.PassthroughCluster.upstream_cx_tx_bytes_total'], N * M + 100)
  t.equal(out['cluster.PassthroughCluster.upstream_cx_rx_bytes_total'], N * M)

  const inb = await waitClosed(server, 'listener.[__]_15006.downstream_cx_active', N + 1)
  t.equal(inb['cluster.InboundPassthroughClusterIpv4.upstream_cx_total'], N + 1)
  t.equal(inb['cluster.InboundPassthroughClusterIpv4.upstream_cx_connect_fail'], 1)

  // Prometheus from 15090, through a real parser
  const prom = await curlIn(client, 'http://127.0.0.1:15090/stats/prometheus')
  t.equal(prom.status, 200)
  const f = new Map(parse(prom.body).map((x) => [x.name, x]))
  t.same(
    f.get('envoy_cluster_upstream_cx_total')?.metrics.find((m) => m.labels?.envoy_cluster_name === 'PassthroughCluster')?.value,
    String(N + 1),
  )
  const sent = f.get('istio_tcp_sent_bytes_total')!.metrics.filter((m) => m.labels?.reporter === 'source')
  t.same(
    sent.map((m) => [m.labels?.destination_service_name, m.labels?.response_flags, m.value]),
    [['PassthroughCluster', '-', String(N * M)]],
    'istio_tcp_sent_bytes_total, reporter source',
  )
  t.equal(f.get('istio_tcp_connections_opened_total')!.metrics[0]!.value, String(N + 1))
  const inProm = new Map(parse((await curlIn(server, 'http://127.0.0.1:15020/stats/prometheus')).body).map((x) => [x.name, x]))
  t.same(
    inProm
      .get('envoy_cluster_upstream_cx_connect_fail')
      ?.metrics.find((m) => m.labels?.envoy_cluster_name === 'InboundPassthroughClusterIpv4')?.value,
    '1',
    "merged metrics (15020) carry the proxy's too",
  )
  const closed = inProm.get('istio_tcp_connections_closed_total')!.metrics
  t.ok(
    closed.some((m) => m.labels?.reporter === 'destination' && m.labels?.response_flags === 'UF,URX' && m.value === '1'),
    'the failed one is closed with UF,URX, reporter destination',
  )
})

async function waitClosed(pod: Parameters<typeof adminStats>[0], activeGauge: string, total: number): Promise<Record<string, number>> {
  const end = Date.now() + 5000
  for (;;) {
    const s = await adminStats(pod)
    const listener = activeGauge.replace('downstream_cx_active', 'downstream_cx_total')
    if ((s[activeGauge] === 0 && s[listener] === total) || Date.now() > end) return s
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test(
  '/ready and /healthz/ready: 200, 503 after /healthcheck/fail, 200 after /healthcheck/ok, 503 while draining',
  rootOnly(),
  async (t) => {
    const { client } = await podPair(t)
    const sidecar = await startSidecar(t, client, ['--drain-duration', '30s'])
    const ready = () => curlIn(client, 'http://127.0.0.1:15000/ready')
    const healthz = async () => (await curlIn(client, 'http://127.0.0.1:15021/healthz/ready')).status
    t.same(await ready(), { status: 200, body: 'LIVE\n' })
    t.equal(await healthz(), 200)
    t.equal((await curlIn(client, 'http://127.0.0.1:15000/healthcheck/fail', 'POST')).body, 'OK\n')
    t.same(await ready(), { status: 503, body: 'DRAINING\n' })
    t.equal(await healthz(), 503)
    await curlIn(client, 'http://127.0.0.1:15000/healthcheck/ok', 'POST')
    t.equal((await ready()).status, 200)
    sidecar.child.kill('SIGTERM')
    await sidecar.waitFor(/draining: listeners closed/, 'stderr')
    t.same(await ready(), { status: 503, body: 'DRAINING\n' }, 'the admin answers through the drain')
    t.equal(await healthz(), 503)
  },
)

t.test('/drain_listeners?inboundonly stops virtualInbound only; /quitquitquit exits 0', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server)
  t.equal((await runClient(t, client, server.ip, 9080, 100)).received, 100, 'served before the drain')
  t.equal((await curlIn(server, 'http://127.0.0.1:15000/drain_listeners?inboundonly', 'POST')).body, 'OK\n')
  t.equal((await runClient(t, client, server.ip, 9080, 100)).received, 0, 'inbound refused after the drain')
  const stats = await adminStats(server)
  t.equal(stats['listener.[__]_15006.downstream_cx_total'], 1, 'the refused connection never reached virtualInbound')
  t.equal((await curlIn(server, 'http://127.0.0.1:15021/healthz/ready')).status, 503)
  const outbound = await runClient(t, server, client.ip, 15021, 0)
  t.equal(outbound.error, null, 'virtualOutbound still accepts (a connection out of the drained pod works)')
  t.equal((await curlIn(server, 'http://127.0.0.1:15000/quitquitquit', 'POST')).body, 'OK\n')
  t.equal(await inbound.exited, 0, '/quitquitquit exits 0')
})

t.test('/drain_listeners?graceful lets an open transfer finish; without graceful open connections are closed', rootOnly(), async (t) => {
  const MB = 1_000_000
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  await startServerApp(t, client, 9080)
  await startSidecar(t, client)
  await startSidecar(t, server)
  const graceful = runClient(t, client, server.ip, 9080, 2 * MB, 2000)
  await waitForStat(server, 'listener.[__]_15006.downstream_cx_active', (n) => n === 1)
  t.equal((await curlIn(server, 'http://127.0.0.1:15000/drain_listeners?inboundonly&graceful', 'POST')).status, 200)
  const a = await graceful
  t.equal(a.error, null)
  t.equal(a.received, 2 * MB, 'the in-flight transfer through the drained listener finished')
  t.equal(a.receivedSha256, a.sentSha256)

  const abrupt = runClient(t, server, client.ip, 9080, 2 * MB, 2000)
  await waitForStat(server, 'listener.[__]_15001.downstream_cx_active', (n) => n === 1)
  t.equal((await curlIn(server, 'http://127.0.0.1:15000/drain_listeners', 'POST')).status, 200)
  const b = await abrupt
  t.ok(b.received < 2 * MB, `the transfer out of the pod was cut short (${b.received} bytes back)`)
  t.equal(b.error, 'ECONNRESET', 'and the client sees a reset, not a clean end')
})

t.test('the admin port is pod-local; health and metrics answer other pods; bad requests get 404/405', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startSidecar(t, client)
  await startSidecar(t, server)
  t.equal((await curlIn(client, `http://${server.ip}:15000/ready`)).status, 0, 'another pod gets no answer from 15000')
  t.equal((await curlIn(client, `http://${server.ip}:15021/healthz/ready`)).status, 200, 'another pod reads 15021')
  t.match((await curlIn(client, `http://${server.ip}:15090/stats/prometheus`)).body, '# TYPE envoy_listener_downstream_cx_total counter')
  const notFound = await curlIn(server, 'http://127.0.0.1:15000/nope')
  t.equal(notFound.status, 404)
  t.match(notFound.body, /^invalid path\. admin commands are:/)
  t.same(await curlIn(server, 'http://127.0.0.1:15000/quitquitquit'), { status: 405, body: 'Method GET not allowed, POST required.' })
  t.equal((await curlIn(server, 'http://127.0.0.1:15000/ready')).status, 200, 'and the GET changed nothing')
})

t.test("access log: success, UF, UH (BlackHoleCluster) in Istio's text format, UF in JSON", rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client, ['--outbound-traffic-policy', 'REGISTRY_ONLY', '--registry', `reviews=${server.ip}`])
  const inbound = await startSidecar(t, server, ['--access-log-format', 'json'])
  const ok = await runClient(t, client, server.ip, 9080, 1234)
  await runClient(t, client, server.ip, 9999, 10)
  await runClient(t, client, '198.18.0.99', 80, 10)
  const lines = await eventually(() => outbound.accessLines().length >= 3 && outbound.accessLines())
  const ts = '\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\]'
  t.match(
    lines.find((l) => l.includes(':9080')),
    new RegExp(
      `^${ts} "- - -" 0 - - - "-" 1234 1234 \\d+ - "-" "-" "-" "-" "198\\.18\\.0\\.2:9080" PassthroughCluster 198\\.18\\.0\\.1:\\d+ 198\\.18\\.0\\.2:9080 198\\.18\\.0\\.1:${ok.local.port} - -$`,
    ),
    'success',
  )
  t.match(
    lines.find((l) => l.includes('198.18.0.99')),
    new RegExp(
      `^${ts} "- - -" 0 UH - registry_only "-" 0 0 \\d+ - "-" "-" "-" "-" "-" BlackHoleCluster - 198\\.18\\.0\\.99:80 198\\.18\\.0\\.1:\\d+ - -$`,
    ),
    'BlackHole',
  )
  const uf = JSON.parse(await eventually(() => inbound.accessLines().find((l) => l.includes(':9999'))))
  t.match(
    uf,
    {
      response_flags: 'UF,URX',
      upstream_transport_failure_reason: 'delayed_connect_error:_111',
      upstream_cluster: 'InboundPassthroughClusterIpv4',
      bytes_received: 0,
      upstream_host: '198.18.0.2:9999',
      route_name: null,
    },
    'UF in JSON',
  )
})

t.test("access log: the looped hop of an unexempted proxy is NR in Istio's text format", rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client, ['--uid', '2000', '--gid', '2000'])
  await runClient(t, client, server.ip, 9080, 10)
  const nr = await eventually(() => outbound.accessLines().find((l) => l.includes(' NR ')))
  t.match(
    nr,
    /^\[[^\]]+\] "- - -" 0 NR - upstream_loop "-" 0 0 \d+ - "-" "-" "-" "-" "-" BlackHoleCluster - \[?[\d.:a-f]+\]?:15001 198\.18\.0\.1:\d+ - -$/,
    'downstream local address is the listener the hop came back to',
  )
  const stats = await adminStats(client)
  t.ok(stats[`listener.${L}.downstream_cx_total`]! >= 2, 'both hops counted on virtualOutbound')
})

t.test('SIGHUP reopens the access log: after a rename the next line lands in a new file at the path', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client)
  await startSidecar(t, server)
  await runClient(t, client, server.ip, 9080, 111)
  await eventually(() => outbound.accessLines().length === 1)
  renameSync(outbound.accessLog, `${outbound.accessLog}.1`)
  outbound.child.kill('SIGHUP')
  // the reopen creates the file at the path again: then the next line goes there
  await eventually(() => existsSync(outbound.accessLog))
  await runClient(t, client, server.ip, 9080, 222)
  const fresh = await eventually(() => outbound.accessLines().length === 1 && outbound.accessLines())
  t.match(fresh[0], ' 222 222 ', 'the new file has the second connection')
  const old = readFileSync(`${outbound.accessLog}.1`, 'utf8').trim().split('\n')
  t.equal(old.length, 1)
  t.match(old[0], ' 111 111 ', 'the renamed file kept only the first')
})
