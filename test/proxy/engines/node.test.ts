// One proxied connection over loopback, no root: the lifecycle it publishes, the record it closes with, and
// what the statistics observer makes of that record (counters and the access-log line).
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { formatText } from '../../../src/proxy/access-log.js'
import { defaultProxyConfig, type ProxyConfig } from '../../../src/proxy/config.js'
import { ProxiedConnection } from '../../../src/proxy/engines/node.js'
import type { ConnectionContext } from '../../../src/proxy/engines/ledger.js'
import { StatsObserver } from '../../../src/proxy/connection-observer.js'
import { ConnectionChannel } from '../../../src/proxy/engines/record.js'
import { endpoint } from '../../../src/net/address.js'
import { LoopGuard } from '../../../src/proxy/loop-guard.js'
import { Stats } from '../../../src/stats/stats.js'
import { drain, freePort, loopback, MemoryAccessLog, Recorder, silent, upstream } from '../../helpers/loopback-proxy.js'

const prefix = 'listener.127.0.0.1_15001'

/** A client socket and the proxy's end of it, accepted paused as the listener accepts. */
async function downstreamPair(t: Test): Promise<{ client: Socket; accepted: Socket }> {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const got = new Promise<Socket>((r) => server.once('connection', r))
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, allowHalfOpen: true })
  const accepted = await got
  t.teardown(() => {
    client.destroy()
    accepted.destroy()
    server.close()
  })
  return { client, accepted }
}

/** A connection to dst with its own context: the statistics observer and a recorder subscribed. */
async function proxied(t: Test, dst: number, config: Partial<ProxyConfig> = {}) {
  const stats = new Stats()
  const accessLog = new MemoryAccessLog()
  const recorder = new Recorder()
  const observer = new StatsObserver({ kind: 'outbound', stats, bindAddress: '127.0.0.1', port: 15001, accessLog })
  const events = new ConnectionChannel()
  events.subscribe(observer)
  events.subscribe(recorder)
  const ctx: ConnectionContext = {
    kind: 'outbound',
    config: { ...defaultProxyConfig, relay: 'node', ...config },
    log: silent,
    loopGuard: new LoopGuard(),
    events,
    flow: (cluster) => observer.flow(cluster),
  }
  const { client, accepted } = await downstreamPair(t)
  const route = {
    kind: 'passthrough',
    cluster: 'PassthroughCluster',
    filterChain: 'virtualOutbound-catchall-tcp',
    destination: loopback(dst),
    serviceName: 'unknown',
  } as const
  const conn = new ProxiedConnection(ctx, accepted, route, endpoint(accepted.remoteAddress, accepted.remotePort))
  return { conn, client, stats, accessLog, recorder }
}

const istio = (metric: string, flags: string) =>
  `reporter=.=source;.;destination_service=.=unknown;.;destination_service_name=.=PassthroughCluster;.;request_protocol=.=tcp;.;response_flags=.=${flags};.;${metric}`

t.test('success: bytes both ways are relayed whole and the record, counters and log line say how many', async (t) => {
  const request = randomBytes(300_000)
  const reply = randomBytes(700_000)
  const up = await upstream(t, (s) => {
    const got: Buffer[] = []
    s.on('data', (c: Buffer) => got.push(c))
    s.on('end', () => {
      s.write(Buffer.from(createHash('sha256').update(Buffer.concat(got)).digest('hex')))
      s.end(reply)
    })
  })
  const { client, stats, accessLog, recorder } = await proxied(t, up.port)
  const done = drain(client)
  await new Promise((r) => client.once('connect', r))
  const clientPort = client.localPort
  client.end(request)
  const { bytes, error } = await done
  t.equal(error, null, 'the client saw no error')
  t.equal(bytes.subarray(0, 64).toString(), createHash('sha256').update(request).digest('hex'), 'the upstream got the request whole')
  t.ok(bytes.subarray(64).equals(reply), 'the client got the reply whole')
  const r = await recorder.record()
  t.same(recorder.names(), ['opened', 'connected', 'closed'], 'lifecycle: opened, connected, closed')
  t.same(r.flags, [], 'no response flags')
  t.equal(r.terminationDetails, '', 'ended normally')
  t.same(r.downstream, { rx: 300_000, tx: 700_064 }, 'downstream bytes')
  t.same(r.upstream?.bytes, { rx: 700_064, tx: 300_000 }, 'upstream bytes')
  const s = stats.snapshot()
  t.equal(s[`${prefix}.downstream_cx_total`], 1)
  t.equal(s[`${prefix}.downstream_cx_active`], 0)
  t.equal(s[`${prefix}.downstream_cx_destroy`], 1)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_total'], 1)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_active'], 0)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_rx_bytes_total'], 700_064)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_tx_bytes_total'], 300_000)
  t.equal(s['tcp.PassthroughCluster.downstream_cx_total'], 1)
  t.equal(s['tcp.PassthroughCluster.downstream_cx_rx_bytes_total'], 300_000)
  t.equal(s['tcp.PassthroughCluster.downstream_cx_tx_bytes_total'], 700_064)
  t.equal(s[istio('istio_tcp_connections_opened_total', '-')], 1)
  t.equal(s[istio('istio_tcp_connections_closed_total', '-')], 1)
  t.equal(s[istio('istio_tcp_sent_bytes_total', '-')], 700_064)
  t.equal(s[istio('istio_tcp_received_bytes_total', '-')], 300_000)
  t.equal(accessLog.entries.length, 1, 'one access-log line')
  t.match(
    formatText(accessLog.entries[0]!),
    new RegExp(
      `"- - -" 0 - - - "-" 300000 700064 \\d+ - "-" "-" "-" "-" "127\\.0\\.0\\.1:${up.port}" PassthroughCluster 127\\.0\\.0\\.1:\\d+ 127\\.0\\.0\\.1:${up.port} 127\\.0\\.0\\.1:${clientPort} - -$`,
    ),
  )
})

t.test('upstream refused: UF,URX with the connect error as the reason, the client is closed', async (t) => {
  const closed = await freePort()
  const { client, stats, accessLog, recorder } = await proxied(t, closed)
  const { bytes } = await drain(client)
  t.equal(bytes.length, 0, 'the client got nothing')
  const r = await recorder.record()
  t.same(recorder.names(), ['opened', 'failed', 'closed'], 'lifecycle: opened, failed, closed')
  t.same(r.flags, ['UF', 'URX'])
  t.equal(r.failureReason, 'delayed_connect_error:_111')
  t.equal(r.upstream?.local, undefined, 'no upstream local address')
  const s = stats.snapshot()
  t.equal(s['cluster.PassthroughCluster.upstream_cx_connect_fail'], 1)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_connect_timeout'], 0)
  t.equal(s['cluster.PassthroughCluster.upstream_cx_active'], 0)
  t.equal(s[istio('istio_tcp_connections_opened_total', '-')], 1, 'opened with no flags')
  t.equal(s[istio('istio_tcp_connections_closed_total', 'UF,URX')], 1, 'closed under UF,URX')
  t.match(
    formatText(accessLog.entries[0]!),
    new RegExp(
      `"- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 \\d+ - "-" "-" "-" "-" "127\\.0\\.0\\.1:${closed}" PassthroughCluster - 127\\.0\\.0\\.1:${closed} `,
    ),
  )
})

t.test('idle timeout: a silent connection is closed, counted and logged idle_timeout', async (t) => {
  const up = await upstream(t, () => {})
  const { client, stats, accessLog, recorder } = await proxied(t, up.port, { idleTimeoutMs: 200 })
  const { error } = await drain(client)
  t.equal(error, null, 'closed with a FIN')
  const r = await recorder.record()
  t.same(recorder.names(), ['opened', 'connected', 'idleTimeout', 'closed'])
  t.equal(r.terminationDetails, 'idle_timeout')
  t.same(r.flags, [])
  t.equal(stats.snapshot()['tcp.PassthroughCluster.idle_timeout'], 1)
  t.match(formatText(accessLog.entries[0]!), /"- - -" 0 - - idle_timeout "-" 0 0 \d+ /)
})

t.test('upstream reset mid-stream: the client is reset, the record names the upstream reset', async (t) => {
  const up = await upstream(t, (s) => {
    s.on('error', () => {})
    s.write(randomBytes(64 * 1024), () => setTimeout(() => s.resetAndDestroy(), 50))
  })
  const { client, stats, accessLog, recorder } = await proxied(t, up.port)
  const { bytes, error } = await drain(client)
  t.equal(error, 'ECONNRESET', 'the client sees ECONNRESET, not EOF')
  t.ok(bytes.length <= 64 * 1024, `the client got at most the bytes sent before the reset (${bytes.length})`)
  const r = await recorder.record()
  t.same(recorder.names(), ['opened', 'connected', 'closed'])
  t.equal(r.terminationDetails, 'upstream_econnreset')
  t.equal(r.upstream?.bytes.rx, 64 * 1024, 'the upstream bytes read are recorded')
  t.equal(stats.snapshot()['cluster.PassthroughCluster.upstream_cx_rx_bytes_total'], 64 * 1024)
  t.match(formatText(accessLog.entries[0]!), new RegExp(`"- - -" 0 - - upstream_econnreset "-" 0 ${r.downstream.tx} \\d+ `))
})
