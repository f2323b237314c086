// The DNS proxy's numbers in two forms. Istio's agent metrics under Istio's names (pkg/dns/monitoring.go),
// which the merged-metrics port (15020) serves with the agent's istio_agent_ prefix; and our breakdown of
// where each answer came from, in the sidecar's Stats store under dns.*, so /stats and /stats/prometheus
// (as envoy_dns_*) show it next to the listeners' counters.
import type { Counter, Gauge, Histogram, Stats } from '../stats/stats.js'

/** Istio's buckets for dns_upstream_request_duration_seconds. */
export const upstreamDurationBuckets = [0.001, 0.005, 0.01, 0.1, 0.5, 1, 5]

export class DnsMetrics {
  // Istio's four
  requests = 0
  upstreamRequests = 0
  upstreamFailures = 0
  readonly #durations = new Array<number>(upstreamDurationBuckets.length).fill(0)
  #durationCount = 0
  #durationSum = 0
  // our breakdown, in the shared store
  readonly answeredFromTable: Counter
  readonly forwarded: Counter
  readonly nxdomain: Counter
  readonly servfail: Counter
  readonly forwardOverflow: Counter
  readonly malformed: Counter
  readonly unmatchedReplies: Counter
  readonly tcpConnections: Counter
  readonly tcpOverflow: Counter
  readonly tcpPausedReading: Counter
  readonly tcpEvicted: Counter
  readonly tcpIdleTimeout: Counter
  readonly tcpFrameTimeout: Counter
  readonly tcpBufferedBytes: Gauge
  readonly total: Counter
  readonly upstreamTime: Histogram

  constructor(stats: Stats) {
    this.total = stats.counter('dns.requests')
    this.answeredFromTable = stats.counter('dns.answered_from_table')
    this.forwarded = stats.counter('dns.forwarded')
    this.nxdomain = stats.counter('dns.nxdomain')
    this.servfail = stats.counter('dns.servfail')
    this.forwardOverflow = stats.counter('dns.forward_overflow')
    this.malformed = stats.counter('dns.malformed')
    this.unmatchedReplies = stats.counter('dns.upstream_unmatched_replies')
    this.tcpConnections = stats.counter('dns.tcp_connections')
    this.tcpOverflow = stats.counter('dns.tcp_overflow')
    this.tcpPausedReading = stats.counter('dns.tcp_paused_reading')
    this.tcpEvicted = stats.counter('dns.tcp_evicted')
    this.tcpIdleTimeout = stats.counter('dns.tcp_idle_timeout')
    this.tcpFrameTimeout = stats.counter('dns.tcp_frame_timeout')
    this.tcpBufferedBytes = stats.gauge('dns.tcp_tx_bytes_buffered')
    this.upstreamTime = stats.histogram('dns.upstream_rq_time')
  }

  request(): void {
    this.requests++
    this.total.inc()
  }

  upstreamAttempt(ok: boolean, ms: number): void {
    this.upstreamRequests++
    if (!ok) this.upstreamFailures++
    this.upstreamTime.record(ms)
    const seconds = ms / 1000
    this.#durationCount++
    this.#durationSum += seconds
    const i = upstreamDurationBuckets.findIndex((le) => seconds <= le)
    if (i >= 0) this.#durations[i]!++
  }

  /** Prometheus text with Istio's names; the caller adds the agent's prefix. */
  prometheus(prefix: string): string {
    const n = (name: string) => `${prefix}${name}`
    const lines = [
      `# HELP ${n('dns_requests_total')} Total number of DNS requests.`,
      `# TYPE ${n('dns_requests_total')} counter`,
      `${n('dns_requests_total')} ${this.requests}`,
      `# HELP ${n('dns_upstream_requests_total')} Total number of DNS requests forwarded to upstream.`,
      `# TYPE ${n('dns_upstream_requests_total')} counter`,
      `${n('dns_upstream_requests_total')} ${this.upstreamRequests}`,
      `# HELP ${n('dns_upstream_failures_total')} Total number of DNS failures forwarding to upstream.`,
      `# TYPE ${n('dns_upstream_failures_total')} counter`,
      `${n('dns_upstream_failures_total')} ${this.upstreamFailures}`,
      `# HELP ${n('dns_upstream_request_duration_seconds')} Total time in seconds it takes to get a response from upstream.`,
      `# TYPE ${n('dns_upstream_request_duration_seconds')} histogram`,
    ]
    let cumulative = 0
    upstreamDurationBuckets.forEach((le, i) => {
      cumulative += this.#durations[i]!
      lines.push(`${n('dns_upstream_request_duration_seconds')}_bucket{le="${le}"} ${cumulative}`)
    })
    lines.push(`${n('dns_upstream_request_duration_seconds')}_bucket{le="+Inf"} ${this.#durationCount}`)
    lines.push(`${n('dns_upstream_request_duration_seconds')}_sum ${this.#durationSum}`)
    lines.push(`${n('dns_upstream_request_duration_seconds')}_count ${this.#durationCount}`)
    return lines.join('\n') + '\n'
  }
}
