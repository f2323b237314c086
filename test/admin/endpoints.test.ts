// The HTTP ports over real sockets: status codes, a busy port named at start-up, health, merged metrics.
import { createServer, type Server } from 'node:http'
import parse from 'parse-prometheus-text-format'
import t from 'tap'
import { keyCounters, keyCountersOf, parseStatsJson } from '../../src/admin/key-counters.js'
import { startObservability } from '../../src/admin/observability.js'
import { silentLogger } from '../../src/logger.js'
import { FakeTarget } from '../helpers/admin-target.js'

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return port
}

async function ports() {
  return {
    adminPort: await freePort(),
    healthPort: await freePort(),
    prometheusPort: await freePort(),
    mergedMetricsPort: await freePort(),
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as { port: number }).port
}

t.test('admin, health, Prometheus and merged metrics answer on their ports', async (t) => {
  const target = new FakeTarget({ ...(await ports()), bindAddress: '127.0.0.1' })
  target.stats.counter('cluster.PassthroughCluster.upstream_cx_total').inc(4)
  const obs = await startObservability(target, { quit() {} }, silentLogger)
  t.teardown(() => obs.close())
  const c = target.config
  const get = (port: number, path: string, method = 'GET') => fetch(`http://127.0.0.1:${port}${path}`, { method })

  const ready = await get(c.adminPort, '/ready')
  t.same([ready.status, await ready.text()], [200, 'LIVE\n'])
  const wrong = await get(c.adminPort, '/reset_counters')
  t.equal(wrong.status, 405)
  const unknown = await get(c.adminPort, '/nope')
  t.equal(unknown.status, 404)
  t.match(await unknown.text(), 'invalid path. admin commands are:')

  t.equal((await get(c.healthPort, '/healthz/ready')).status, 200)
  t.equal((await get(c.healthPort, '/healthz/live')).status, 404)
  t.equal((await get(c.adminPort, '/healthcheck/fail', 'POST')).status, 200)
  t.equal((await get(c.healthPort, '/healthz/ready')).status, 503, 'health fails after /healthcheck/fail')

  const prom = await get(c.prometheusPort, '/stats/prometheus')
  t.equal(prom.status, 200)
  t.match(prom.headers.get('content-type'), 'text/plain; version=0.0.4')
  t.match(await prom.text(), 'envoy_cluster_upstream_cx_total{envoy_cluster_name="PassthroughCluster"} 4\n')
  t.equal((await get(c.prometheusPort, '/stats')).status, 404, 'the Prometheus port serves only /stats/prometheus')
})

t.test('a port in use stops start-up with an error naming the endpoint and port, and frees the others', async (t) => {
  const busy = createServer()
  const port = await listen(busy)
  t.teardown(() => busy.close())
  const p = await ports()
  const target = new FakeTarget({ ...p, healthPort: port, bindAddress: '127.0.0.1' })
  await t.rejects(startObservability(target, { quit() {} }, silentLogger), {
    code: 'SIDECAR_ERR_LISTEN',
    message: `health: cannot listen on 127.0.0.1 port ${port}: it is already in use`,
  })
  // The admin port, bound before the failure, was released again.
  const again = await startObservability(new FakeTarget({ ...p, healthPort: 0, bindAddress: '127.0.0.1' }), { quit() {} }, silentLogger)
  t.same(
    again.endpoints.map((e) => e.name),
    ['admin', 'prometheus', 'merged metrics'],
    'port 0 leaves health out',
  )
  await again.close()
})

t.test("merged metrics: the proxy's followed by the app's; an unreachable app is counted, not fatal", async (t) => {
  const app = createServer((_req, res) => res.end('# TYPE app_requests_total counter\napp_requests_total{path="/"} 12'))
  const appPort = await listen(app)
  t.teardown(() => app.close())
  const deadPort = await freePort()
  for (const [url, reachable] of [
    [`http://127.0.0.1:${appPort}/metrics`, true],
    [`http://127.0.0.1:${deadPort}/metrics`, false],
  ] as const) {
    const target = new FakeTarget({ ...(await ports()), bindAddress: '127.0.0.1', appMetricsUrl: url })
    target.stats.counter('cluster.PassthroughCluster.upstream_cx_total').inc(4)
    const obs = await startObservability(target, { quit() {} }, silentLogger)
    const res = await fetch(`http://127.0.0.1:${target.config.mergedMetricsPort}/stats/prometheus`)
    const body = await res.text()
    await obs.close()
    t.equal(res.status, 200, `status 200 with the app ${reachable ? 'up' : 'down'}`)
    const f = new Map(parse(body).map((x) => [x.name, x]))
    t.equal(f.get('envoy_cluster_upstream_cx_total')?.metrics[0]?.value, '4', "the proxy's metrics are there")
    t.equal(f.get('istio_agent_scrape_failures_total')?.metrics[0]?.value, reachable ? '0' : '1')
    if (reachable) t.same(f.get('app_requests_total')?.metrics, [{ value: '12', labels: { path: '/' } }], "the app's metrics are merged in")
    else t.match(body, `# app metrics from ${url} unavailable`)
  }
})

t.test('keyCounters picks the listener and cluster counters out of a snapshot or /stats?format=json', async (t) => {
  const target = new FakeTarget()
  const s = target.stats
  s.counter('listener.[__]_15001.downstream_cx_total').inc(3)
  s.gauge('listener.[__]_15001.downstream_cx_active').inc(1)
  s.counter('cluster.PassthroughCluster.upstream_cx_connect_fail').inc(2)
  s.counter('cluster.PassthroughCluster.upstream_cx_rx_bytes_total').inc(100)
  s.counter('tcp.PassthroughCluster.downstream_cx_total').inc(9)
  const k = keyCountersOf(s)
  t.same(k.listeners['[__]_15001'], { port: 15001, cxTotal: 3, cxActive: 1, overflow: 0, noFilterChainMatch: 0 })
  t.same(k.clusters.PassthroughCluster, { cxTotal: 0, cxActive: 0, connectFail: 2, connectTimeout: 0, rxBytes: 100, txBytes: 0 })
  const body = JSON.stringify({
    stats: Object.entries(s.snapshot())
      .map(([name, value]) => ({ name, value }))
      .concat([{ histograms: {} } as never]),
  })
  t.same(keyCounters(parseStatsJson(body)), k, "the same from the admin's JSON")
})
