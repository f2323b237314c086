// The one subscriber that turns a listener's connection events into Envoy's statistics (listener.*
// downstream_cx_*, cluster.* upstream_cx_*, tcp.*, Istio's TCP metrics) and the access-log line. Counting
// happens at open, failure and close only; the per-chunk flow counters are handles the relay bumps.
import type { AccessLogSink } from './access-log.js'
import type { ListenerKind } from './clusters.js'
import {
  accessLogEntry,
  type ConnectionObserver,
  type ConnectionRecord,
  type FailedEvent,
  type IdleEvent,
  type OpenedEvent,
} from './engines/record.js'
import { isFdExhaustion } from './fd-budget.js'
import { StatHandles } from './listener-stats.js'
import type { FlowCounters } from './engines/node-relay.js'
import { formatResponseFlags, ResponseFlag } from './response-flags.js'
import { listenerStatPrefix, type Counter, type Gauge, type Histogram, type Stats } from '../stats/stats.js'

export interface StatsObserverOptions {
  kind: ListenerKind
  stats: Stats
  bindAddress: string
  port: number
  accessLog: AccessLogSink
}

export class StatsObserver implements ConnectionObserver {
  readonly #handles: StatHandles
  readonly #accessLog: AccessLogSink
  readonly #cx: {
    total: Counter
    destroy: Counter
    active: Gauge
    overflow: Counter
    globalOverflow: Counter
    fdExhausted: Counter
    length: Histogram
    noFilterChain: Counter
  }

  constructor(o: StatsObserverOptions) {
    this.#handles = new StatHandles(o.stats, o.kind)
    this.#accessLog = o.accessLog
    const prefix = listenerStatPrefix(o.bindAddress, o.port)
    const s = o.stats
    this.#cx = {
      total: s.counter(`${prefix}.downstream_cx_total`),
      destroy: s.counter(`${prefix}.downstream_cx_destroy`),
      active: s.gauge(`${prefix}.downstream_cx_active`),
      overflow: s.counter(`${prefix}.downstream_cx_overflow`),
      globalOverflow: s.counter(`${prefix}.downstream_global_cx_overflow`),
      // our own name: Envoy has no counter for sockets refused with EMFILE/ENFILE
      fdExhausted: s.counter('sidecar.fd_exhausted'),
      length: s.histogram(`${prefix}.downstream_cx_length_ms`),
      noFilterChain: s.counter(`${prefix}.no_filter_chain_match`),
    }
  }

  /** The kernel's backlog or server.maxConnections dropped a connection before it was accepted. */
  overflow(): void {
    this.#cx.overflow.inc()
  }

  /** Refused over the descriptor budget (fd-budget.ts), before it became a connection. */
  globalOverflow(): void {
    this.#cx.globalOverflow.inc()
  }

  /** A socket refused with EMFILE/ENFILE outside a connection's upstream connect (the listener's accept). */
  fdExhausted(): void {
    this.#cx.fdExhausted.inc()
  }

  /** The relay's per-chunk counters for a cluster's connections. */
  flow(cluster: string): FlowCounters {
    const tcp = this.#handles.tcp(cluster)
    return { paused: tcp.pausedReading, resumed: tcp.resumedReading }
  }

  opened(e: OpenedEvent): void {
    this.#cx.total.inc()
    this.#cx.active.inc()
    this.#handles.istio(e.cluster, e.serviceName, '-').opened.inc()
    if (e.disposition === 'proxied') {
      this.#handles.tcp(e.cluster).downstreamCxTotal.inc()
      const cluster = this.#handles.cluster(e.cluster)
      cluster.upstreamCxTotal.inc()
      cluster.upstreamCxActive.inc()
    } else if (e.disposition === 'blackholed') {
      if (e.flags.includes(ResponseFlag.NoRouteFound)) this.#cx.noFilterChain.inc()
      this.#handles.tcp(e.cluster).downstreamCxNoRoute.inc()
    }
  }

  /** nothing is counted at connect: Envoy counts the upstream at dial and the bytes at close */
  connected(): void {}

  failed(e: FailedEvent): void {
    if (isFdExhaustion(e)) this.#cx.fdExhausted.inc()
    const cluster = this.#handles.cluster(e.cluster)
    if (e.timeout) cluster.upstreamCxConnectTimeout.inc()
    cluster.upstreamCxConnectFail.inc()
  }

  idleTimeout(e: IdleEvent): void {
    this.#handles.tcp(e.cluster).idleTimeout.inc()
  }

  closed(r: ConnectionRecord): void {
    this.#cx.active.dec()
    this.#cx.destroy.inc()
    this.#cx.length.record(r.durationMs)
    const istio = this.#handles.istio(r.cluster, r.serviceName, formatResponseFlags(r.flags) || '-')
    istio.closed.inc()
    if (r.upstream) {
      const cluster = this.#handles.cluster(r.cluster)
      cluster.upstreamCxActive.dec()
      cluster.upstreamCxRxBytesTotal.inc(r.upstream.bytes.rx)
      cluster.upstreamCxTxBytesTotal.inc(r.upstream.bytes.tx)
      const tcp = this.#handles.tcp(r.cluster)
      tcp.downstreamCxRxBytesTotal.inc(r.downstream.rx)
      tcp.downstreamCxTxBytesTotal.inc(r.downstream.tx)
      istio.sent.inc(r.downstream.tx)
      istio.received.inc(r.downstream.rx)
    }
    this.#accessLog.write(accessLogEntry(r))
  }
}
