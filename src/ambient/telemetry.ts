// What the ztunnel says of each connection, under ztunnel's own names (istio/ztunnel src/proxy/metrics.rs):
// the access log's "connection complete" line (target `access`, fields src.addr, src.workload, ..., direction,
// bytes_sent, bytes_recv, duration) and Istio's TCP metrics with reporter="source" (outbound) or
// "destination" (inbound). A connection carried over HBONE adds both peers' SPIFFE ids (src.identity,
// dst.identity; source_principal, destination_principal) and connection_security_policy="mutual_tls"; a plain
// one has none: the principals and the policy are "unknown", as ztunnel's metrics say for plaintext.
import { formatEndpoint } from '../net/address.js'
import type { ListenerKind } from '../proxy/clusters.js'
import type { ConnectionRecord } from '../proxy/engines/record.js'
import { formatResponseFlags } from '../proxy/response-flags.js'
import type { MeshInfo } from './hbone-outbound.js'
import type { PodInfo } from './pod-proxy.js'

/** A pod the ztunnel serves, by the addresses its connections showed (ztunnel's workload table stands in). */
export interface WorkloadName {
  name: string
  namespace: string
}

/** The access log's fields for one closed connection, in ztunnel's order; empty ones left out as ztunnel does. */
export function accessFields(
  kind: ListenerKind,
  pod: PodInfo,
  r: ConnectionRecord,
  peer: WorkloadName | undefined,
  mesh?: MeshInfo,
): [string, string | number][] {
  const self: WorkloadName = { name: pod.name, namespace: pod.namespace }
  const src = kind === 'outbound' ? self : peer
  const dst = kind === 'outbound' ? peer : self
  const fields: [string, string | number | undefined][] = [
    ['src.addr', formatEndpoint(r.downstreamRemote)],
    ['src.workload', src && `"${src.name}"`],
    ['src.namespace', src && `"${src.namespace}"`],
    ['src.identity', mesh && `"${mesh.srcIdentity}"`],
    // over HBONE, ztunnel's dst.addr is where the bytes went (the peer's 15008) and dst.hbone_addr the target
    ['dst.addr', formatEndpoint(mesh?.via ?? r.upstream?.host ?? r.downstreamLocal)],
    ['dst.hbone_addr', mesh && formatEndpoint(mesh.target)],
    ['dst.service', r.serviceName !== 'unknown' ? `"${r.serviceName}"` : undefined],
    ['dst.workload', dst && `"${dst.name}"`],
    ['dst.namespace', dst && `"${dst.namespace}"`],
    ['dst.identity', mesh && `"${mesh.dstIdentity}"`],
    ['direction', kind === 'outbound' ? '"outbound"' : '"inbound"'],
    // as ztunnel logs them: bytes the source sent toward the destination, and back
    ['bytes_sent', r.downstream.rx],
    ['bytes_recv', r.downstream.tx],
    ['duration', `"${r.durationMs}ms"`],
    ['error', r.flags.length > 0 ? `"${[r.terminationDetails || r.failureReason || formatResponseFlags(r.flags)].join('')}"` : undefined],
  ]
  return fields.filter((f): f is [string, string | number] => f[1] !== undefined && f[1] !== '-')
}

/** ztunnel's plain format: time, level, target, message, then key=value fields (src/telemetry.rs IstioFormat). */
export function accessLine(time: Date, failed: boolean, fields: [string, string | number][]): string {
  const kv = fields.map(([k, v]) => `${k}=${v}`).join(' ')
  return `${time.toISOString()}\t${failed ? 'error' : 'info'}\taccess\tconnection complete\t${kv}`
}

/** Istio's TCP metrics labels, the subset the ztunnel stand-in can fill. */
export interface TrafficLabels {
  reporter: 'source' | 'destination'
  source_workload: string
  source_workload_namespace: string
  source_principal: string
  destination_service: string
  destination_workload: string
  destination_workload_namespace: string
  destination_principal: string
  request_protocol: 'tcp'
  response_flags: string
  connection_security_policy: string
}

export function trafficLabels(
  kind: ListenerKind,
  pod: PodInfo,
  r: ConnectionRecord,
  peer: WorkloadName | undefined,
  mesh?: MeshInfo,
): TrafficLabels {
  const self: WorkloadName = { name: pod.name, namespace: pod.namespace }
  const src = kind === 'outbound' ? self : peer
  const dst = kind === 'outbound' ? peer : self
  const flags = formatResponseFlags(r.flags)
  return {
    reporter: kind === 'outbound' ? 'source' : 'destination',
    source_workload: src?.name ?? 'unknown',
    source_workload_namespace: src?.namespace ?? 'unknown',
    source_principal: mesh?.srcIdentity || 'unknown',
    destination_service: r.serviceName,
    destination_workload: dst?.name ?? 'unknown',
    destination_workload_namespace: dst?.namespace ?? 'unknown',
    destination_principal: mesh?.dstIdentity || 'unknown',
    request_protocol: 'tcp',
    response_flags: flags === '' ? '-' : flags,
    connection_security_policy: mesh ? 'mutual_tls' : 'unknown',
  }
}

interface Series {
  labels: TrafficLabels
  opened: number
  closed: number
  failed: number
  sent: number
  received: number
}

/** The TCP metrics, one series per label set, rendered in Prometheus' text format. */
export class TcpMetrics {
  readonly #series = new Map<string, Series>()

  record(labels: TrafficLabels, r: ConnectionRecord): void {
    const key = JSON.stringify(labels)
    let s = this.#series.get(key)
    if (!s) {
      s = { labels, opened: 0, closed: 0, failed: 0, sent: 0, received: 0 }
      this.#series.set(key, s)
    }
    s.opened++
    s.closed++
    if (labels.response_flags !== '-') s.failed++
    s.sent += r.downstream.rx
    s.received += r.downstream.tx
  }

  prometheus(): string {
    const metrics: [string, string, (s: Series) => number][] = [
      ['istio_tcp_connections_opened_total', 'The total number of TCP connections opened', (s) => s.opened],
      ['istio_tcp_connections_closed_total', 'The total number of TCP connections closed', (s) => s.closed],
      ['istio_tcp_connections_failed_total', 'The total number of TCP connections that failed to establish', (s) => s.failed],
      ['istio_tcp_sent_bytes_total', 'The size of total bytes sent during response in case of a TCP connection', (s) => s.sent],
      ['istio_tcp_received_bytes_total', 'The size of total bytes received during request in case of a TCP connection', (s) => s.received],
    ]
    const out: string[] = []
    for (const [name, help, value] of metrics) {
      out.push(`# HELP ${name} ${help}.`, `# TYPE ${name} counter`)
      for (const s of this.#series.values()) out.push(`${name}{${renderLabels(s.labels)}} ${value(s)}`)
    }
    return out.join('\n') + '\n'
  }
}

export function renderLabels(labels: object): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${String(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)
    .join(',')
}
