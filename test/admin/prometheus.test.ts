// /stats/prometheus checked with a real exposition-format parser: Envoy's names as labels, Istio's metrics
// unfolded, histograms as _bucket/_sum/_count.
import parse, { type PromFamily } from 'parse-prometheus-text-format'
import t from 'tap'
import { renderPrometheus, toSeries } from '../../src/admin/prometheus.js'
import { select } from '../../src/admin/stats-render.js'
import { istioStatName, Stats } from '../../src/stats/stats.js'

function sample(): Stats {
  const s = new Stats()
  s.counter('cluster.PassthroughCluster.upstream_cx_connect_fail').inc(2)
  s.counter('cluster.BlackHoleCluster.upstream_cx_connect_fail')
  s.counter('listener.0.0.0.0_15001.downstream_cx_total').inc(7)
  s.counter('listener.[__]_15006.downstream_cx_total').inc(1)
  s.counter('tcp.PassthroughCluster.downstream_cx_rx_bytes_total').inc(1000)
  s.counter('server.odd-name"with\\chars').inc()
  s.gauge('cluster.PassthroughCluster.upstream_cx_active').inc(3)
  const labels = {
    reporter: 'source',
    destination_service: 'unknown',
    destination_service_name: 'PassthroughCluster',
    request_protocol: 'tcp',
    response_flags: '-',
  }
  s.counter(istioStatName('istio_tcp_sent_bytes_total', labels)).inc(512)
  s.counter(istioStatName('istio_tcp_sent_bytes_total', { ...labels, response_flags: 'UF,URX' })).inc(0)
  const h = s.histogram('listener.0.0.0.0_15001.downstream_cx_length_ms')
  for (const v of [0.2, 3, 3, 7000, 9_000_000]) h.record(v)
  return s
}

function families(text: string): Map<string, PromFamily> {
  const parsed = parse(text)
  return new Map(parsed.map((f) => [f.name, f]))
}

t.test('the output parses, every family typed once, every name and value valid', async (t) => {
  const text = renderPrometheus(select(sample(), { usedOnly: false }))
  const parsed = parse(text)
  const names = parsed.map((f) => f.name)
  t.equal(new Set(names).size, names.length, 'each family appears once')
  t.equal(names.length, text.split('\n').filter((l) => l.startsWith('# TYPE ')).length, 'every family has its # TYPE line')
  for (const f of parsed) {
    t.match(f.name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/, `${f.name} is a valid metric name`)
    t.not(f.type, 'UNTYPED', `${f.name} is typed`)
    for (const m of f.metrics) if (m.value !== undefined) t.ok(Number.isFinite(Number(m.value)), `${f.name} value ${m.value} is a number`)
  }
})

t.test("Envoy's names become labels with an envoy_ prefix", async (t) => {
  const f = families(renderPrometheus(select(sample(), { usedOnly: false })))
  const fail = f.get('envoy_cluster_upstream_cx_connect_fail')!
  t.equal(fail.type, 'COUNTER')
  t.same(fail.metrics, [
    { value: '0', labels: { envoy_cluster_name: 'BlackHoleCluster' } },
    { value: '2', labels: { envoy_cluster_name: 'PassthroughCluster' } },
  ])
  t.same(
    f.get('envoy_listener_downstream_cx_total')!.metrics.map((m) => [m.labels?.envoy_listener_address, m.value]),
    [
      ['0.0.0.0_15001', '7'],
      ['[__]_15006', '1'],
    ],
  )
  t.same(f.get('envoy_tcp_downstream_cx_rx_bytes_total')!.metrics, [{ value: '1000', labels: { envoy_tcp_prefix: 'PassthroughCluster' } }])
  t.equal(f.get('envoy_cluster_upstream_cx_active')!.type, 'GAUGE')
  t.ok(f.get('envoy_server_odd_name_with_chars'), 'characters Prometheus refuses become _')
})

t.test("Istio's metrics keep their names and get their labels back", async (t) => {
  const f = families(renderPrometheus(select(sample(), { usedOnly: false })))
  const sent = f.get('istio_tcp_sent_bytes_total')!
  t.equal(sent.type, 'COUNTER')
  const ok = sent.metrics.find((m) => m.labels?.response_flags === '-')!
  t.equal(ok.value, '512')
  t.same(ok.labels, {
    reporter: 'source',
    destination_service: 'unknown',
    destination_service_name: 'PassthroughCluster',
    request_protocol: 'tcp',
    response_flags: '-',
  })
  t.ok(
    sent.metrics.some((m) => m.labels?.response_flags === 'UF,URX'),
    'a label value with a comma survives',
  )
})

t.test('histograms: cumulative buckets up to +Inf, _sum and _count', async (t) => {
  const text = renderPrometheus(select(sample(), { usedOnly: false }))
  // The parser folds a labelled histogram into one bucket map and drops its labels, _sum and _count
  // (prom2json's shape), so those are read from the lines themselves.
  const h = families(text).get('envoy_listener_downstream_cx_length_ms')!
  t.equal(h.type, 'HISTOGRAM')
  const b = h.metrics[0]!.buckets!
  t.same([b['0.5'], b['5'], b['10000'], b['7200000'], b['+Inf']], ['1', '3', '4', '4', '5'], 'cumulative; past the last bound only in +Inf')
  const series = '{envoy_listener_address="0.0.0.0_15001"'
  t.match(text, `envoy_listener_downstream_cx_length_ms_bucket${series},le="0.5"} 1\n`)
  t.match(text, `envoy_listener_downstream_cx_length_ms_bucket${series},le="+Inf"} 5\n`)
  t.match(text, `envoy_listener_downstream_cx_length_ms_sum${series}} ${0.2 + 3 + 3 + 7000 + 9_000_000}\n`)
  t.match(text, `envoy_listener_downstream_cx_length_ms_count${series}} 5\n`)
})

t.test('label values are escaped', async (t) => {
  t.same(toSeries('cluster.a"b.upstream_cx_total'), { family: 'envoy_cluster_upstream_cx_total', labels: [['envoy_cluster_name', 'a"b']] })
  const s = new Stats()
  s.counter('cluster.a"b\\c.upstream_cx_total').inc()
  const f = families(renderPrometheus(select(s, { usedOnly: false })))
  t.equal(f.get('envoy_cluster_upstream_cx_total')!.metrics[0]!.labels!.envoy_cluster_name, 'a"b\\c')
})

t.test('an empty selection is an empty page', async (t) => {
  t.equal(renderPrometheus(select(sample(), { usedOnly: false, filter: /^nothing$/ })), '')
})
