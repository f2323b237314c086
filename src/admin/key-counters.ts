// The handful of counters `lab status` shows per pod. In-process: keyCounters(sidecar.stats.snapshot()).
// From outside the pod, the admin port is 127.0.0.1 inside the pod's namespace, so fetch there:
//   const r = await execIn(ns, ['curl', '-sf', 'http://127.0.0.1:15000/stats?format=json'])
//   const k = keyCounters(parseStatsJson(r.stdout))
import type { Stats } from '../stats/stats.js'

export interface ListenerCounters {
  port: number
  cxTotal: number
  cxActive: number
  overflow: number
  noFilterChainMatch: number
}

export interface ClusterCounters {
  cxTotal: number
  cxActive: number
  connectFail: number
  connectTimeout: number
  rxBytes: number
  txBytes: number
}

export interface KeyCounters {
  /** by Envoy's stat address, e.g. [__]_15001 */
  listeners: Record<string, ListenerCounters>
  /** by cluster name: PassthroughCluster, BlackHoleCluster, InboundPassthroughClusterIpv4/6 */
  clusters: Record<string, ClusterCounters>
}

const listenerFields: Record<string, keyof ListenerCounters> = {
  downstream_cx_total: 'cxTotal',
  downstream_cx_active: 'cxActive',
  downstream_cx_overflow: 'overflow',
  no_filter_chain_match: 'noFilterChainMatch',
}

const clusterFields: Record<string, keyof ClusterCounters> = {
  upstream_cx_total: 'cxTotal',
  upstream_cx_active: 'cxActive',
  upstream_cx_connect_fail: 'connectFail',
  upstream_cx_connect_timeout: 'connectTimeout',
  upstream_cx_rx_bytes_total: 'rxBytes',
  upstream_cx_tx_bytes_total: 'txBytes',
}

export function keyCounters(flat: Record<string, number>): KeyCounters {
  const out: KeyCounters = { listeners: {}, clusters: {} }
  for (const [name, value] of Object.entries(flat)) {
    const l = /^listener\.(.+_(\d+))\.([a-z_]+)$/.exec(name)
    const lf = l && listenerFields[l[3]!]
    if (l && lf) {
      const entry = (out.listeners[l[1]!] ??= { port: Number(l[2]), cxTotal: 0, cxActive: 0, overflow: 0, noFilterChainMatch: 0 })
      entry[lf] = value
      continue
    }
    const c = /^cluster\.([^.]+)\.([a-z_]+)$/.exec(name)
    const cf = c && clusterFields[c[2]!]
    if (c && cf) {
      const entry = (out.clusters[c[1]!] ??= { cxTotal: 0, cxActive: 0, connectFail: 0, connectTimeout: 0, rxBytes: 0, txBytes: 0 })
      entry[cf] = value
    }
  }
  return out
}

export function keyCountersOf(stats: Stats): KeyCounters {
  return keyCounters(stats.snapshot())
}

/** /stats?format=json -> flat name -> value (histograms left out). */
export function parseStatsJson(body: string): Record<string, number> {
  const parsed = JSON.parse(body) as { stats?: { name?: string; value?: unknown }[] }
  const out: Record<string, number> = {}
  for (const s of parsed.stats ?? []) if (typeof s.name === 'string' && typeof s.value === 'number') out[s.name] = s.value
  return out
}
