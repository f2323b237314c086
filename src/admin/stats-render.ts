// /stats in Envoy's text and JSON forms: counters and gauges as `name: value` sorted by name, then
// histograms as quantile summaries. Selection (?filter, ?usedonly) is shared with the Prometheus form.
import { histogramBuckets, type Histogram, type Stats } from '../stats/stats.js'
import type { NameFilter } from './stats-filter.js'

export interface Selection {
  usedOnly: boolean
  /** Envoy matches the regex anywhere in the name (RE2 partial match) */
  filter?: NameFilter
}

export interface Selected {
  counters: [string, number][]
  gauges: [string, number][]
  histograms: [string, Histogram][]
}

const byName = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

export function select(stats: Stats, s: Selection): Selected {
  const keep = (name: string, used: boolean) => (!s.usedOnly || used) && (!s.filter || s.filter.test(name))
  const scalars = (map: Map<string, { value: number; used: boolean }>) =>
    [...map]
      .filter(([n, v]) => keep(n, v.used))
      .map(([n, v]) => [n, v.value] as [string, number])
      .sort(byName)
  return {
    counters: scalars(stats.counters),
    gauges: scalars(stats.gauges),
    histograms: [...stats.histograms].filter(([n, h]) => keep(n, h.used)).sort(byName),
  }
}

/** Envoy's supported quantiles, in percent. */
export const supportedQuantiles = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]

/** Estimates a quantile from the buckets by interpolating inside the bucket that holds its rank. */
export function quantile(h: Histogram, percent: number): number {
  if (h.count === 0) return NaN
  const rank = (percent / 100) * h.count
  let seen = 0
  for (let i = 0; i < histogramBuckets.length; i++) {
    const n = h.counts[i]!
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : histogramBuckets[i - 1]!
      return lower + ((histogramBuckets[i]! - lower) * Math.max(0, rank - seen)) / n
    }
    seen += n
  }
  return histogramBuckets[histogramBuckets.length - 1]!
}

function short(n: number): string {
  return Number.isNaN(n) ? 'nan' : String(Number(n.toPrecision(4)))
}

/** Envoy's interval column is always nan here: nothing flushes stats on a timer. */
function quantileSummary(h: Histogram): string {
  if (!h.used) return 'No recorded values'
  return supportedQuantiles.map((q) => `P${q}(nan,${short(quantile(h, q))})`).join(' ')
}

export function renderText(sel: Selected): string {
  const scalars = [...sel.counters, ...sel.gauges].sort(byName)
  const lines = scalars.map(([n, v]) => `${n}: ${v}`)
  for (const [n, h] of sel.histograms) lines.push(`${n}: ${quantileSummary(h)}`)
  return lines.length ? lines.join('\n') + '\n' : ''
}

export function renderJson(sel: Selected): unknown {
  const scalars: unknown[] = [...sel.counters, ...sel.gauges].sort(byName).map(([name, value]) => ({ name, value }))
  if (sel.histograms.length) {
    scalars.push({
      histograms: {
        supported_quantiles: supportedQuantiles,
        computed_quantiles: sel.histograms.map(([name, h]) => ({
          name,
          values: supportedQuantiles.map((q) => ({ interval: null, cumulative: h.used ? Number(quantile(h, q).toPrecision(4)) : null })),
        })),
      },
    })
  }
  return { stats: scalars }
}
