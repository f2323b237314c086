// /listeners, /clusters and /config_dump: the sidecar's listeners and Istio's fixed clusters in Envoy's
// text (`name::address`, `cluster::field::value`) and JSON forms.
import { formatHostPort } from '../net/address.js'
import type { ProxyConfig } from '../proxy/config.js'
import { json, text, type AdminRoute } from './router.js'
import type { AdminTarget } from './target.js'

/** Istio's circuit breakers for its passthrough clusters: every limit at the uint32 maximum. */
const unlimited = 4294967295

export interface ClusterInfo {
  name: string
  type: 'ORIGINAL_DST' | 'STATIC'
  connectTimeoutMs: number
  /** upstream source address (Istio's upstream_bind_config), inbound passthrough only */
  bindAddress?: string
}

export function clusters(c: ProxyConfig): ClusterInfo[] {
  return [
    { name: 'BlackHoleCluster', type: 'STATIC', connectTimeoutMs: c.connectTimeoutMs },
    { name: 'InboundPassthroughClusterIpv4', type: 'ORIGINAL_DST', connectTimeoutMs: c.connectTimeoutMs, bindAddress: c.inboundSourceV4 },
    { name: 'InboundPassthroughClusterIpv6', type: 'ORIGINAL_DST', connectTimeoutMs: c.connectTimeoutMs, bindAddress: c.inboundSourceV6 },
    { name: 'PassthroughCluster', type: 'ORIGINAL_DST', connectTimeoutMs: c.connectTimeoutMs },
  ]
}

function socketAddress(host: string, port: number) {
  return { socket_address: { address: host, port_value: port } }
}

function clustersText(list: ClusterInfo[]): string {
  const lines: string[] = []
  for (const { name } of list) {
    for (const priority of ['default', 'high']) {
      for (const limit of ['max_connections', 'max_pending_requests', 'max_requests', 'max_retries']) {
        lines.push(`${name}::${priority}_priority::${limit}::${unlimited}`)
      }
    }
    lines.push(`${name}::added_via_api::false`)
  }
  return lines.join('\n') + '\n'
}

function clustersJson(list: ClusterInfo[]) {
  const thresholds = { max_connections: unlimited, max_pending_requests: unlimited, max_requests: unlimited, max_retries: unlimited }
  return {
    cluster_statuses: list.map(({ name }) => ({
      name,
      circuit_breakers: { thresholds: [thresholds, { priority: 'HIGH', ...thresholds }] },
      observability_name: name,
    })),
  }
}

const seconds = (ms: number) => `${ms / 1000}s`

export function configDump(target: AdminTarget) {
  const c = target.config
  const listeners = target.listeners.map((l) => ({
    active_state: {
      listener: {
        name: l.name,
        address: socketAddress(c.bindAddress, l.port),
        use_original_dst: true,
        traffic_direction: l.kind === 'outbound' ? 'OUTBOUND' : 'INBOUND',
        filter_chains:
          l.kind === 'outbound' ? [`${l.name}-catchall-tcp`, `${l.name}-blackhole`] : ['PassthroughFilterChain', `${l.name}-blackhole`],
        per_connection_buffer_limit_bytes: c.bufferLimitBytes,
      },
    },
  }))
  const cl = clusters(c).map((k) => ({
    cluster: {
      name: k.name,
      type: k.type,
      connect_timeout: seconds(k.connectTimeoutMs),
      ...(k.type === 'ORIGINAL_DST' ? { lb_policy: 'CLUSTER_PROVIDED' } : {}),
      ...(k.bindAddress ? { upstream_bind_config: { source_address: { address: k.bindAddress, port_value: 0 } } } : {}),
    },
  }))
  return {
    configs: [
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
        bootstrap: { admin: { address: socketAddress('127.0.0.1', c.adminPort) } },
      },
      { '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump', static_clusters: cl },
      { '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump', static_listeners: listeners },
      // Not an Envoy section: the stand-in's own effective configuration, flag for flag.
      { '@type': 'sidecar-lab.ProxyConfig', config: c },
    ],
  }
}

export function configRoutes(target: AdminTarget): AdminRoute[] {
  const format = { name: 'format', help: 'File format to use', choices: ['text', 'json'] }
  return [
    {
      path: '/listeners',
      help: 'print listener info',
      params: [format],
      handle(req) {
        const host = target.config.bindAddress
        if (req.query.get('format') === 'json') {
          return json({ listener_statuses: target.listeners.map((l) => ({ name: l.name, local_address: socketAddress(host, l.port) })) })
        }
        return text(target.listeners.map((l) => `${l.name}::${formatHostPort(host, l.port)}\n`).join(''))
      },
    },
    {
      path: '/clusters',
      help: 'upstream cluster status',
      params: [format],
      handle: (req) =>
        req.query.get('format') === 'json' ? json(clustersJson(clusters(target.config))) : text(clustersText(clusters(target.config))),
    },
    { path: '/config_dump', help: 'dump current Envoy configs (experimental)', handle: () => json(configDump(target)) },
  ]
}
