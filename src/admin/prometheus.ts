// Envoy's /stats/prometheus: names as labels by Envoy's default tag rules (cluster.NAME. ->
// envoy_cluster_name, listener.ADDRESS. -> envoy_listener_address, tcp.PREFIX. -> envoy_tcp_prefix), an
// `envoy_` prefix, every other character that Prometheus refuses as `_`, one # TYPE line per family and
// histograms as cumulative _bucket/_sum/_count. Istio's metrics keep their own names (no envoy_ prefix).
import { histogramBuckets, istioTagSeparator, type Histogram } from '../stats/stats.js'
import type { Selected } from './stats-render.js'

export interface Series {
  family: string
  labels: [string, string][]
}

const tagRules: { re: RegExp; family: string; label: string }[] = [
  { re: /^cluster\.([^.]+)\.(.+)$/, family: 'cluster', label: 'envoy_cluster_name' },
  // Envoy's rule: an IPv4 address with dots and digits, or a bracketed IPv6 one, then _PORT.
  { re: /^listener\.((?:[_.\d]*|[_[\]a-fA-F\d]*))\.(.+)$/, family: 'listener', label: 'envoy_listener_address' },
  { re: /^tcp\.([^.]+)\.(.+)$/, family: 'tcp', label: 'envoy_tcp_prefix' },
]

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_')
}

/** Splits a stat name into its Prometheus family and labels. */
export function toSeries(name: string): Series {
  if (name.includes(istioTagSeparator)) {
    const parts = name.split(istioTagSeparator)
    const metric = parts.pop()!
    const labels = parts.map((p) => p.split('=.=', 2) as [string, string])
    return { family: sanitize(metric), labels }
  }
  for (const rule of tagRules) {
    const m = rule.re.exec(name)
    if (m) return { family: `envoy_${rule.family}_${sanitize(m[2]!)}`, labels: [[rule.label, m[1]!]] }
  }
  return { family: `envoy_${sanitize(name)}`, labels: [] }
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labelText(labels: [string, string][]): string {
  return labels.length ? `{${labels.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}` : ''
}

/** Groups series by family, keeping families and series in name order so each # TYPE line appears once. */
function families<T>(entries: [string, T][]): Map<string, { labels: [string, string][]; value: T }[]> {
  const out = new Map<string, { labels: [string, string][]; value: T }[]>()
  for (const [name, value] of entries) {
    const s = toSeries(name)
    let list = out.get(s.family)
    if (!list) out.set(s.family, (list = []))
    list.push({ labels: s.labels, value })
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

function histogramLines(family: string, labels: [string, string][], h: Histogram): string[] {
  const lines: string[] = []
  let cumulative = 0
  histogramBuckets.forEach((le, i) => {
    cumulative += h.counts[i]!
    lines.push(`${family}_bucket${labelText([...labels, ['le', String(le)]])} ${cumulative}`)
  })
  lines.push(`${family}_bucket${labelText([...labels, ['le', '+Inf']])} ${h.count}`)
  lines.push(`${family}_sum${labelText(labels)} ${h.sum}`)
  lines.push(`${family}_count${labelText(labels)} ${h.count}`)
  return lines
}

export function renderPrometheus(sel: Selected): string {
  const lines: string[] = []
  for (const [type, entries] of [
    ['counter', sel.counters],
    ['gauge', sel.gauges],
  ] as const) {
    for (const [family, series] of families(entries)) {
      lines.push(`# TYPE ${family} ${type}`)
      for (const s of series) lines.push(`${family}${labelText(s.labels)} ${s.value}`)
    }
  }
  for (const [family, series] of families(sel.histograms)) {
    lines.push(`# TYPE ${family} histogram`)
    for (const s of series) lines.push(...histogramLines(family, s.labels, s.value))
  }
  return lines.length ? lines.join('\n') + '\n' : ''
}

/** Prometheus' text exposition content type, which scrapers check. */
export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8'
