// One line per proxied connection at close, in Istio's default text format (TCP fields, HTTP fields
// as '-') or as JSON with the same fields under Envoy's command-operator names.
import { pino } from 'pino'
import type { AccessLogFormat } from './config.js'

export interface AccessLogEntry {
  startTime: Date
  /** comma-joined Envoy response flags (UF,URX / NR / UO / UH / DT), '-' when none */
  responseFlags: string
  connectionTerminationDetails: string
  upstreamTransportFailureReason: string
  bytesReceived: number
  bytesSent: number
  durationMs: number
  upstreamHost: string
  upstreamCluster: string
  upstreamLocalAddress: string
  downstreamLocalAddress: string
  downstreamRemoteAddress: string
}

/** Envoy replaces spaces in the failure reason with underscores so the text line stays splittable. */
function token(value: string): string {
  return value === '' ? '-' : value.replaceAll(' ', '_')
}

export function formatText(e: AccessLogEntry): string {
  return (
    `[${e.startTime.toISOString()}] "- - -" 0 ${token(e.responseFlags)} - ${token(e.connectionTerminationDetails)} ` +
    `"${token(e.upstreamTransportFailureReason)}" ${e.bytesReceived} ${e.bytesSent} ${e.durationMs} - "-" "-" "-" "-" ` +
    `"${e.upstreamHost}" ${e.upstreamCluster} ${e.upstreamLocalAddress} ${e.downstreamLocalAddress} ` +
    `${e.downstreamRemoteAddress} - -`
  )
}

export function formatJson(e: AccessLogEntry): string {
  return JSON.stringify({
    start_time: e.startTime.toISOString(),
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: token(e.responseFlags),
    response_code_details: null,
    connection_termination_details: e.connectionTerminationDetails || null,
    upstream_transport_failure_reason: e.upstreamTransportFailureReason || null,
    bytes_received: e.bytesReceived,
    bytes_sent: e.bytesSent,
    duration: e.durationMs,
    upstream_service_time: null,
    x_forwarded_for: null,
    user_agent: null,
    request_id: null,
    authority: null,
    upstream_host: e.upstreamHost === '-' ? null : e.upstreamHost,
    upstream_cluster: e.upstreamCluster,
    upstream_local_address: e.upstreamLocalAddress === '-' ? null : e.upstreamLocalAddress,
    downstream_local_address: e.downstreamLocalAddress,
    downstream_remote_address: e.downstreamRemoteAddress,
    requested_server_name: null,
    route_name: null,
  })
}

export interface AccessLogSink {
  write(entry: AccessLogEntry): void
  reopen(): void
  flush(): void
}

/** path '-' is stdout; null disables the access log. Writes are buffered and asynchronous. */
export function createAccessLog(path: string | null, format: AccessLogFormat): AccessLogSink {
  if (path === null) return { write() {}, reopen() {}, flush() {} }
  const dest = pino.destination({ dest: path === '-' ? 1 : path, sync: false, mkdir: true })
  const render = format === 'json' ? formatJson : formatText
  return {
    write: (entry) => dest.write(render(entry) + '\n'),
    reopen: () => dest.reopen(),
    flush: () => {
      try {
        dest.flushSync()
      } catch {
        // not ready yet (nothing written) or already closed
      }
    },
  }
}
