import t from 'tap'
import { formatJson, formatText, type AccessLogEntry } from '../../src/proxy/access-log.js'

const failed: AccessLogEntry = {
  startTime: new Date('2024-06-01T10:00:00.000Z'),
  responseFlags: 'UF,URX',
  connectionTerminationDetails: '',
  upstreamTransportFailureReason: 'delayed_connect_error: 111',
  bytesReceived: 0,
  bytesSent: 0,
  durationMs: 0,
  upstreamHost: '10.0.0.5:7801',
  upstreamCluster: 'InboundPassthroughClusterIpv4',
  upstreamLocalAddress: '-',
  downstreamLocalAddress: '10.0.0.5:7801',
  downstreamRemoteAddress: '10.0.0.9:33948',
}

t.test("text format equals Istio's line for a failed TCP connection", async (t) => {
  // the real line from Istio's documentation of its default format (../shared/reference/envoy-sidecar.md)
  t.equal(
    formatText(failed),
    '[2024-06-01T10:00:00.000Z] "- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 0 - "-" "-" "-" "-" "10.0.0.5:7801" InboundPassthroughClusterIpv4 - 10.0.0.5:7801 10.0.0.9:33948 - -',
  )
})

t.test('a clean connection prints - for flags and reason, and 22 space-separated fields once quoted fields are folded', async (t) => {
  const line = formatText({
    ...failed,
    responseFlags: '',
    upstreamTransportFailureReason: '',
    bytesReceived: 12,
    bytesSent: 34,
    durationMs: 5,
    upstreamLocalAddress: '127.0.0.6:41000',
  })
  t.match(line, /"- - -" 0 - - - "-" 12 34 5 - /)
  t.equal(line.replace(/"[^"]*"/g, 'Q').split(' ').length, 22)
})

t.test('JSON format carries the same fields', async (t) => {
  const j = JSON.parse(formatJson(failed))
  t.equal(j.response_flags, 'UF,URX')
  t.equal(j.upstream_transport_failure_reason, 'delayed_connect_error: 111')
  t.equal(j.upstream_cluster, 'InboundPassthroughClusterIpv4')
  t.equal(j.downstream_remote_address, '10.0.0.9:33948')
  t.equal(j.upstream_local_address, null)
  t.equal(j.bytes_received, 0)
})
