// virtualOutbound over loopback, no root: the original destination comes from a function the test sets, so
// a loopback connection is routed to a loopback upstream (or nowhere) without NAT. Asserts the records the
// listener's channel publishes and what the statistics and access log make of them. Both relay engines: the
// native one accepts in C (native/acceptor.c), the node one with node:net.
import t from 'tap'
import { formatText } from '../../src/proxy/access-log.js'
import { drain, loopback, outboundListener, upstream } from '../helpers/loopback-proxy.js'
import { relayEngines } from '../../src/proxy/config.js'
import { stopNativeRelay } from '../../src/proxy/engines/native.js'

const blackhole = (metric: string, flags: string) =>
  `reporter=.=source;.;destination_service=.=unknown;.;destination_service_name=.=BlackHoleCluster;.;request_protocol=.=tcp;.;response_flags=.=${flags};.;${metric}`

// The native engine's relay thread, started by its first connection, ends with the file.
t.teardown(stopNativeRelay)

for (const relay of relayEngines) {
  t.test(`a routed connection is proxied to its original destination, counted on the listener and logged (${relay} engine)`, async (t) => {
    const up = await upstream(t, (s) => {
      s.on('data', (c: Buffer) => s.write(c))
      s.on('end', () => s.end())
    })
    const h = await outboundListener(t, { relay })
    h.route(loopback(up.port))
    const client = h.client()
    const done = drain(client)
    await new Promise((r) => client.once('connect', r))
    const clientPort = client.localPort
    client.end(Buffer.alloc(5000, 1))
    const { bytes, error } = await done
    t.equal(error, null)
    t.equal(bytes.length, 5000, 'echoed back whole')
    const r = await h.recorder.record()
    t.same(h.recorder.names(), ['opened', 'connected', 'closed'])
    t.equal(r.disposition, 'proxied')
    t.same(r.downstream, { rx: 5000, tx: 5000 })
    await h.listener.idle()
    t.equal(h.listener.activeConnections, 0, 'the listener forgot the connection')
    const p = `listener.127.0.0.1_${h.listener.port}`
    const s = h.stats.snapshot()
    t.equal(s[`${p}.downstream_cx_total`], 1)
    t.equal(s[`${p}.downstream_cx_destroy`], 1)
    t.equal(s[`${p}.downstream_cx_active`], 0)
    t.equal(h.stats.histograms.get(`${p}.downstream_cx_length_ms`)?.count, 1, 'the length histogram has the connection')
    t.equal(s['tcp.PassthroughCluster.downstream_cx_total'], 1)
    t.equal(s['cluster.PassthroughCluster.upstream_cx_total'], 1)
    t.equal(h.accessLog.entries.length, 1)
    t.match(
      formatText(h.accessLog.entries[0]!),
      new RegExp(
        `"- - -" 0 - - - "-" 5000 5000 \\d+ - "-" "-" "-" "-" "127\\.0\\.0\\.1:${up.port}" PassthroughCluster 127\\.0\\.0\\.1:\\d+ 127\\.0\\.0\\.1:${up.port} 127\\.0\\.0\\.1:${clientPort} - -$`,
      ),
    )
  })

  t.test(`not redirected: NR, BlackHoleCluster, no_filter_chain_match, closed without a byte (${relay} engine)`, async (t) => {
    const h = await outboundListener(t, { relay })
    h.route(undefined)
    const client = h.client()
    const done = drain(client)
    await new Promise((r) => client.once('connect', r))
    const clientPort = client.localPort
    const { bytes } = await done
    t.equal(bytes.length, 0, 'closed without a reply')
    const r = await h.recorder.record()
    t.same(h.recorder.names(), ['opened', 'closed'])
    t.equal(r.disposition, 'blackholed')
    t.same(r.flags, ['NR'])
    t.equal(r.terminationDetails, 'no_original_dst')
    t.equal(r.upstream, undefined, 'no upstream was dialled')
    const p = `listener.127.0.0.1_${h.listener.port}`
    const s = h.stats.snapshot()
    t.equal(s[`${p}.downstream_cx_total`], 1)
    t.equal(s[`${p}.downstream_cx_destroy`], 1)
    t.equal(s[`${p}.no_filter_chain_match`], 1)
    t.equal(s['tcp.BlackHoleCluster.downstream_cx_no_route'], 1)
    t.equal(s[blackhole('istio_tcp_connections_opened_total', '-')], 1)
    t.equal(s[blackhole('istio_tcp_connections_closed_total', 'NR')], 1)
    t.equal(
      h.stats.counters.get(blackhole('istio_tcp_sent_bytes_total', 'NR'))?.used ?? false,
      false,
      'no byte counters for a blackholed connection',
    )
    t.match(
      formatText(h.accessLog.entries[0]!),
      new RegExp(
        `"- - -" 0 NR - no_original_dst "-" 0 0 \\d+ - "-" "-" "-" "-" "-" BlackHoleCluster - 127\\.0\\.0\\.1:${h.listener.port} 127\\.0\\.0\\.1:${clientPort} - -$`,
      ),
    )
  })

  t.test(`destination is the listener itself: UH destination_is_proxy_listener, not a filter-chain miss (${relay} engine)`, async (t) => {
    const h = await outboundListener(t, { relay })
    h.route(loopback(h.listener.port))
    const { bytes } = await drain(h.client())
    t.equal(bytes.length, 0, 'closed without a reply')
    const r = await h.recorder.record()
    t.same(r.flags, ['UH'])
    t.equal(r.terminationDetails, 'destination_is_proxy_listener')
    const s = h.stats.snapshot()
    t.equal(s[`listener.127.0.0.1_${h.listener.port}.no_filter_chain_match`], 0)
    t.equal(s['tcp.BlackHoleCluster.downstream_cx_no_route'], 1)
    t.equal(s[blackhole('istio_tcp_connections_closed_total', 'UH')], 1)
    t.match(
      formatText(h.accessLog.entries[0]!),
      new RegExp(
        `"- - -" 0 UH - destination_is_proxy_listener "-" 0 0 \\d+ - "-" "-" "-" "-" "-" BlackHoleCluster - 127\\.0\\.0\\.1:${h.listener.port} `,
      ),
    )
  })

  t.test(`upstream refused through the listener: UF,URX, and the descriptors are given back (${relay} engine)`, async (t) => {
    const up = await upstream(t, () => {})
    const port = up.port
    await new Promise((r) => up.server.close(r))
    const h = await outboundListener(t, { relay })
    h.route(loopback(port))
    await drain(h.client())
    const r = await h.recorder.record()
    t.same(r.flags, ['UF', 'URX'])
    t.equal(r.failureReason, 'delayed_connect_error:_111')
    await h.listener.idle()
    t.equal(h.listener.activeConnections, 0)
    t.match(formatText(h.accessLog.entries[0]!), /"- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 /)
  })

  t.test(`idle timeout through the listener: tcp.*.idle_timeout and the log line (${relay} engine)`, async (t) => {
    // the relay thread takes its idle timeout when it starts: this test's, not an earlier test's default
    stopNativeRelay()
    const up = await upstream(t, () => {})
    const h = await outboundListener(t, { relay, idleTimeoutMs: 200 })
    h.route(loopback(up.port))
    await drain(h.client())
    const r = await h.recorder.record()
    t.equal(r.terminationDetails, 'idle_timeout')
    t.equal(h.stats.snapshot()['tcp.PassthroughCluster.idle_timeout'], 1)
    t.match(formatText(h.accessLog.entries[0]!), /"- - -" 0 - - idle_timeout /)
  })
}
