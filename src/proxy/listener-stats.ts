// The per-cluster, per-TCP-proxy and Istio counters the connection observer (connection-observer.ts) bumps,
// each resolved once and cached, so a connection pays a Map lookup at open and close and nothing per chunk.
import type { ListenerKind } from './clusters.js'
import { getOrAdd, istioStatName, type Counter, type Gauge, type Stats } from '../stats/stats.js'

export interface ClusterStats {
  upstreamCxTotal: Counter
  upstreamCxActive: Gauge
  upstreamCxConnectFail: Counter
  upstreamCxConnectTimeout: Counter
  upstreamCxRxBytesTotal: Counter
  upstreamCxTxBytesTotal: Counter
}

export interface TcpStats {
  downstreamCxTotal: Counter
  downstreamCxNoRoute: Counter
  downstreamCxRxBytesTotal: Counter
  downstreamCxTxBytesTotal: Counter
  pausedReading: Counter
  resumedReading: Counter
  idleTimeout: Counter
}

/** Istio's standard TCP metrics for one (cluster, service, response flags) combination. */
export interface IstioTcp {
  opened: Counter
  closed: Counter
  sent: Counter
  received: Counter
}

export class StatHandles {
  readonly #stats: Stats
  readonly #kind: ListenerKind
  readonly #clusters = new Map<string, ClusterStats>()
  readonly #tcps = new Map<string, TcpStats>()
  readonly #istio = new Map<string, IstioTcp>()

  constructor(stats: Stats, kind: ListenerKind) {
    this.#stats = stats
    this.#kind = kind
  }

  cluster(name: string): ClusterStats {
    return getOrAdd(this.#clusters, name, () => {
      const [s, p] = [this.#stats, `cluster.${name}`]
      return {
        upstreamCxTotal: s.counter(`${p}.upstream_cx_total`),
        upstreamCxActive: s.gauge(`${p}.upstream_cx_active`),
        upstreamCxConnectFail: s.counter(`${p}.upstream_cx_connect_fail`),
        upstreamCxConnectTimeout: s.counter(`${p}.upstream_cx_connect_timeout`),
        upstreamCxRxBytesTotal: s.counter(`${p}.upstream_cx_rx_bytes_total`),
        upstreamCxTxBytesTotal: s.counter(`${p}.upstream_cx_tx_bytes_total`),
      }
    })
  }

  tcp(statPrefix: string): TcpStats {
    return getOrAdd(this.#tcps, statPrefix, () => {
      const [s, p] = [this.#stats, `tcp.${statPrefix}`]
      return {
        downstreamCxTotal: s.counter(`${p}.downstream_cx_total`),
        downstreamCxNoRoute: s.counter(`${p}.downstream_cx_no_route`),
        downstreamCxRxBytesTotal: s.counter(`${p}.downstream_cx_rx_bytes_total`),
        downstreamCxTxBytesTotal: s.counter(`${p}.downstream_cx_tx_bytes_total`),
        pausedReading: s.counter(`${p}.downstream_flow_control_paused_reading_total`),
        resumedReading: s.counter(`${p}.downstream_flow_control_resumed_reading_total`),
        idleTimeout: s.counter(`${p}.idle_timeout`),
      }
    })
  }

  /**
   * Istio reports a connection twice, as source from the client's sidecar (outbound) and as destination
   * from the server's (inbound). Passthrough traffic names its cluster as destination_service_name.
   */
  istio(cluster: string, service: string, flags: string): IstioTcp {
    return getOrAdd(this.#istio, `${cluster}|${service}|${flags}`, () => {
      const labels = {
        reporter: this.#kind === 'outbound' ? 'source' : 'destination',
        destination_service: service,
        destination_service_name: service === 'unknown' ? cluster : service,
        request_protocol: 'tcp',
        response_flags: flags,
      }
      const c = (metric: string) => this.#stats.counter(istioStatName(metric, labels))
      return {
        opened: c('istio_tcp_connections_opened_total'),
        closed: c('istio_tcp_connections_closed_total'),
        sent: c('istio_tcp_sent_bytes_total'),
        received: c('istio_tcp_received_bytes_total'),
      }
    })
  }
}
