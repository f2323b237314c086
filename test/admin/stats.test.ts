// /stats in text and JSON, ?filter and ?usedonly, /reset_counters.
import t from 'tap'
import { adminRouter } from '../../src/admin/admin.js'
import { FakeTarget } from '../helpers/admin-target.js'

function setup() {
  const target = new FakeTarget()
  const s = target.stats
  s.counter('cluster.PassthroughCluster.upstream_cx_total').inc(3)
  s.counter('cluster.PassthroughCluster.upstream_cx_connect_fail')
  s.gauge('listener.[__]_15001.downstream_cx_active').inc(2)
  s.counter('listener.[__]_15001.downstream_cx_total').inc(5)
  const h = s.histogram('listener.[__]_15001.downstream_cx_length_ms')
  for (const v of [3, 3, 40, 900]) h.record(v)
  s.histogram('listener.[__]_15006.downstream_cx_length_ms')
  const router = adminRouter(target, { quit() {} })
  const call = (method: string, url: string) => {
    const u = new URL(url, 'http://admin')
    return router.dispatch({ method, path: u.pathname, query: u.searchParams })
  }
  return { target, call }
}

t.test('text: counters and gauges as "name: value" sorted by name, then histograms', async (t) => {
  const { call } = setup()
  const lines = (await call('GET', '/stats')).body.trimEnd().split('\n')
  t.same(lines.slice(0, 4), [
    'cluster.PassthroughCluster.upstream_cx_connect_fail: 0',
    'cluster.PassthroughCluster.upstream_cx_total: 3',
    'listener.[__]_15001.downstream_cx_active: 2',
    'listener.[__]_15001.downstream_cx_total: 5',
  ])
  t.match(lines[4], /^listener\.\[__\]_15001\.downstream_cx_length_ms: P0\(nan,\d+(\.\d+)?\) P25\(nan,[\d.]+\) P50/)
  t.equal(lines[5], 'listener.[__]_15006.downstream_cx_length_ms: No recorded values')
})

t.test('?usedonly leaves out what was never written; ?filter keeps names matching the regex anywhere', async (t) => {
  const { call } = setup()
  const used = (await call('GET', '/stats?usedonly')).body
  t.notMatch(used, 'upstream_cx_connect_fail')
  t.notMatch(used, '15006')
  t.match(used, 'cluster.PassthroughCluster.upstream_cx_total: 3')
  t.equal(
    (await call('GET', '/stats?filter=cx_(total|active)$')).body,
    'cluster.PassthroughCluster.upstream_cx_total: 3\nlistener.[__]_15001.downstream_cx_active: 2\nlistener.[__]_15001.downstream_cx_total: 5\n',
  )
  t.equal((await call('GET', '/stats?filter=nothing-matches')).body, '')
  const bad = await call('GET', '/stats?filter=(')
  t.equal(bad.status, 400)
  t.match(bad.body, /^Invalid re2 regex/)
})

t.test('?format=json: {stats:[{name,value}..., {histograms:{supported_quantiles, computed_quantiles}}]}', async (t) => {
  const { call } = setup()
  const r = await call('GET', '/stats?format=json&filter=15001')
  t.equal(r.contentType, 'application/json')
  const j = JSON.parse(r.body)
  t.same(j.stats.slice(0, 2), [
    { name: 'listener.[__]_15001.downstream_cx_active', value: 2 },
    { name: 'listener.[__]_15001.downstream_cx_total', value: 5 },
  ])
  const h = j.stats[2].histograms
  t.same(h.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100])
  t.equal(h.computed_quantiles[0].name, 'listener.[__]_15001.downstream_cx_length_ms')
  t.equal(h.computed_quantiles[0].values.length, 10)
  const p100 = h.computed_quantiles[0].values[9].cumulative
  t.ok(p100 > 500 && p100 <= 1000, `P100 ${p100} lies in the 900 ms sample's bucket (500, 1000]`)
  t.equal((await call('GET', '/stats?format=xml')).status, 404)
})

t.test('/reset_counters zeroes counters and keeps gauges', async (t) => {
  const { call, target } = setup()
  t.equal((await call('POST', '/reset_counters')).body, 'OK\n')
  const snap = target.stats.snapshot()
  t.equal(snap['cluster.PassthroughCluster.upstream_cx_total'], 0)
  t.equal(snap['listener.[__]_15001.downstream_cx_active'], 2)
})
