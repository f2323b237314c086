// Envoy's admin dispatch rules and every endpoint's answer, through the router with a stand-in sidecar.
import t from 'tap'
import { adminRouter } from '../../src/admin/admin.js'
import { FakeTarget } from '../helpers/admin-target.js'

function setup() {
  const target = new FakeTarget()
  let quits = 0
  const router = adminRouter(target, { quit: () => quits++ })
  const call = (method: string, url: string) => {
    const u = new URL(url, 'http://admin')
    return router.dispatch({ method, path: u.pathname, query: u.searchParams })
  }
  return { target, router, call, quits: () => quits }
}

t.test('an unknown path is 404 with "invalid path." and the list of endpoints', async (t) => {
  const { call } = setup()
  const r = await call('GET', '/statz')
  t.equal(r.status, 404)
  t.match(r.body, /^invalid path\. admin commands are:\n/)
  t.match(r.body, '  /stats/prometheus: print server stats in prometheus format\n')
  t.equal((await call('GET', '/stats/')).status, 404, 'paths match exactly, as in Envoy')
})

t.test('state-changing endpoints refuse GET with 405 and change nothing', async (t) => {
  const { call, target, quits } = setup()
  for (const path of ['/healthcheck/fail', '/healthcheck/ok', '/drain_listeners', '/reset_counters', '/logging', '/quitquitquit']) {
    const r = await call('GET', path)
    t.equal(r.status, 405, `GET ${path}`)
    t.equal(r.body, 'Method GET not allowed, POST required.')
  }
  t.equal(target.state, 'LIVE')
  t.equal(target.drains.length, 0)
  t.equal(quits(), 0)
  t.equal((await call('DELETE', '/stats')).status, 405, 'DELETE on a read is refused too')
})

t.test('a 405 carries Allow: POST for state-changing endpoints, GET, HEAD, POST for reads', async (t) => {
  const { call } = setup()
  t.same((await call('HEAD', '/quitquitquit')).headers, { allow: 'POST' })
  const r = await call('PUT', '/stats')
  t.equal(r.status, 405)
  t.equal(r.body, 'Method PUT not allowed, GET required.')
  t.same(r.headers, { allow: 'GET, HEAD, POST' })
  for (const m of ['GET', 'HEAD', 'POST']) t.equal((await call(m, '/ready')).status, 200, `${m} /ready`)
})

t.test('/help lists every endpoint sorted, POST ones marked, parameters indented', async (t) => {
  const { call } = setup()
  const r = await call('GET', '/help')
  t.equal(r.status, 200)
  const paths = [...r.body.matchAll(/^ {2}(\/[^\s:]*)/gm)].map((m) => m[1])
  t.same(paths, [...paths].sort(), 'sorted by path')
  for (const p of [
    '/',
    '/clusters',
    '/config_dump',
    '/drain_listeners',
    '/healthcheck/fail',
    '/healthcheck/ok',
    '/help',
    '/listeners',
    '/logging',
    '/quitquitquit',
    '/ready',
    '/reset_counters',
    '/server_info',
    '/stats',
    '/stats/prometheus',
  ]) {
    t.ok(paths.includes(p), `lists ${p}`)
  }
  t.match(r.body, '  /quitquitquit (POST): exit the server\n')
  t.match(r.body, '      format: File format to use; One of (text, json)\n')
})

t.test('/ is an HTML page linking the reads and posting the state changes', async (t) => {
  const { call } = setup()
  const r = await call('GET', '/')
  t.equal(r.status, 200)
  t.match(r.contentType, 'text/html')
  t.match(r.body, '<a href="/stats">stats</a>')
  t.match(r.body, '<form action="/quitquitquit" method="post">')
})

t.test('/ready is 200 LIVE, then 503 DRAINING after /healthcheck/fail, 200 again after /healthcheck/ok', async (t) => {
  const { call } = setup()
  t.same(await call('GET', '/ready'), { status: 200, body: 'LIVE\n', contentType: 'text/plain; charset=UTF-8' })
  t.equal((await call('POST', '/healthcheck/fail')).body, 'OK\n')
  const failed = await call('GET', '/ready')
  t.same([failed.status, failed.body], [503, 'DRAINING\n'])
  await call('POST', '/healthcheck/ok')
  t.equal((await call('GET', '/ready')).status, 200)
})

t.test('/drain_listeners passes ?inboundonly and ?graceful through', async (t) => {
  const { call, target } = setup()
  t.equal((await call('POST', '/drain_listeners?inboundonly&graceful')).body, 'OK\n')
  await call('POST', '/drain_listeners')
  t.same(target.drains, [
    { inboundOnly: true, graceful: true },
    { inboundOnly: false, graceful: false },
  ])
  t.equal((await call('GET', '/ready')).status, 503, 'a drained server is not ready')
})

t.test('/quitquitquit answers OK and then asks the proxy to stop', async (t) => {
  const { call, quits } = setup()
  t.equal((await call('POST', '/quitquitquit')).body, 'OK\n')
  await new Promise((r) => setImmediate(r))
  t.equal(quits(), 1)
})

t.test('/logging lists the loggers and sets every level; an unknown level is refused', async (t) => {
  const { call, target } = setup()
  t.equal((await call('POST', '/logging')).body, 'active loggers:\n  sidecar: off\n  virtualOutbound: off\n')
  const r = await call('POST', '/logging?level=warning')
  t.equal(r.body, 'active loggers:\n  sidecar: warning\n  virtualOutbound: warning\n')
  t.equal(target.loggers().sidecar.level, 'warn')
  const bad = await call('POST', '/logging?level=loud')
  t.equal(bad.status, 404)
  t.match(bad.body, "unknown logger level 'loud'")
})

t.test('/listeners in text and JSON', async (t) => {
  const { call } = setup()
  t.equal((await call('GET', '/listeners')).body, 'virtualOutbound::[::]:15001\nvirtualInbound::[::]:15006\n')
  const j = JSON.parse((await call('GET', '/listeners?format=json')).body)
  t.same(j.listener_statuses[0], { name: 'virtualOutbound', local_address: { socket_address: { address: '::', port_value: 15001 } } })
})

t.test("/clusters in text and JSON name Istio's four clusters", async (t) => {
  const { call } = setup()
  const body = (await call('GET', '/clusters')).body
  t.match(body, 'PassthroughCluster::default_priority::max_connections::4294967295\n')
  t.match(body, 'InboundPassthroughClusterIpv4::added_via_api::false\n')
  const j = JSON.parse((await call('GET', '/clusters?format=json')).body)
  t.same(
    j.cluster_statuses.map((c: { name: string }) => c.name),
    ['BlackHoleCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6', 'PassthroughCluster'],
  )
})

t.test('/config_dump carries the effective configuration; /server_info the state and uptime', async (t) => {
  const { call } = setup()
  const dump = JSON.parse((await call('GET', '/config_dump')).body)
  const types = dump.configs.map((c: { '@type': string }) => c['@type'])
  t.ok(types.includes('type.googleapis.com/envoy.admin.v3.ListenersConfigDump'))
  const clusters = dump.configs.find((c: { '@type': string }) => c['@type'].endsWith('ClustersConfigDump')).static_clusters
  t.same(
    clusters.find((c: { cluster: { name: string } }) => c.cluster.name === 'InboundPassthroughClusterIpv4').cluster.upstream_bind_config
      .source_address.address,
    '127.0.0.6',
  )
  t.equal(dump.configs.at(-1).config.connectTimeoutMs, 10_000)
  const info = JSON.parse((await call('GET', '/server_info')).body)
  t.equal(info.state, 'LIVE')
  t.match(info.uptime_current_epoch, /^4[2-9]s$/)
})
