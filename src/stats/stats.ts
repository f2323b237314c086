// Envoy-style statistics: counters, gauges and a length histogram under Envoy's names
// (listener.<addr>.*, tcp.<prefix>.*, cluster.<name>.*). Components resolve a handle once and bump it,
// so the per-connection cost is a property increment and nothing is looked up by string.

export class Counter {
  value = 0
  used = false
  inc(by = 1): void {
    this.value += by
    this.used = true
  }
}

export class Gauge {
  value = 0
  used = false
  inc(by = 1): void {
    this.value += by
    this.used = true
  }
  dec(by = 1): void {
    this.value -= by
  }
}

/** Envoy's default histogram buckets (milliseconds). */
export const histogramBuckets = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, 7200000,
]

export class Histogram {
  readonly counts = new Array<number>(histogramBuckets.length).fill(0)
  count = 0
  sum = 0
  used = false
  record(value: number): void {
    this.count++
    this.sum += value
    this.used = true
    for (let i = 0; i < histogramBuckets.length; i++) {
      if (value <= histogramBuckets[i]!) {
        this.counts[i]!++
        return
      }
    }
  }
}

export class Stats {
  readonly counters = new Map<string, Counter>()
  readonly gauges = new Map<string, Gauge>()
  readonly histograms = new Map<string, Histogram>()

  counter(name: string): Counter {
    return getOrAdd(this.counters, name, () => new Counter())
  }

  gauge(name: string): Gauge {
    return getOrAdd(this.gauges, name, () => new Gauge())
  }

  histogram(name: string): Histogram {
    return getOrAdd(this.histograms, name, () => new Histogram())
  }

  /** Envoy's /reset_counters: counters go back to zero; gauges and histograms keep their values. */
  resetCounters(): void {
    for (const c of this.counters.values()) c.value = 0
  }

  /** Flat name -> value view, for tests and the admin page. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, c] of this.counters) out[name] = c.value
    for (const [name, g] of this.gauges) out[name] = g.value
    return out
  }
}

export function getOrAdd<T>(map: Map<string, T>, name: string, make: () => T): T {
  let value = map.get(name)
  if (!value) {
    value = make()
    map.set(name, value)
  }
  return value
}

/** Envoy names listener stats by address with ':' turned to '_' (listener.0.0.0.0_15001.*). */
export function listenerStatPrefix(bindAddress: string, port: number): string {
  const address = bindAddress.includes(':') ? `[${bindAddress.replaceAll(':', '_')}]` : bindAddress
  return `listener.${address}_${port}`
}

/**
 * Istio's standard metrics live in Envoy's store with their labels folded into the name
 * (`reporter=.=source;.;response_flags=.=-;.;istio_tcp_connections_opened_total`), which is how Envoy's
 * /stats shows them; the Prometheus renderer unfolds them again.
 */
export function istioStatName(metric: string, labels: Record<string, string>): string {
  return (
    Object.entries(labels)
      .map(([k, v]) => `${k}=.=${v};.;`)
      .join('') + metric
  )
}

export const istioTagSeparator = ';.;'
