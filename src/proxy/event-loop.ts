// The event loop's delay as gauges, so a soak (or anyone) can see from the admin port whether the one
// thread that relays every byte fell behind. Node's own histogram (perf_hooks, sampled by a libuv timer,
// no JS per sample) is read and reset once per window, so each gauge is the figure of the last window.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Gauge, Stats } from '../stats/stats.js'

/** Gauge names, microseconds: the last window's p50, p99 and max, and the largest max since start. */
export const eventLoopGauges = {
  p50: 'server.event_loop_delay_p50_us',
  p99: 'server.event_loop_delay_p99_us',
  max: 'server.event_loop_delay_max_us',
  peak: 'server.event_loop_delay_peak_us',
} as const

/** Starts sampling (every 10 ms) and publishing (every windowMs); returns the function that stops it. */
export function watchEventLoop(stats: Stats, windowMs = 5000): () => void {
  const h = monitorEventLoopDelay({ resolution: 10 })
  h.enable()
  const g = Object.fromEntries(Object.entries(eventLoopGauges).map(([k, name]) => [k, stats.gauge(name)])) as Record<
    keyof typeof eventLoopGauges,
    Gauge
  >
  const set = (gauge: Gauge, ns: number) => {
    gauge.value = Math.round(ns / 1000)
    gauge.used = true
  }
  const timer = setInterval(() => {
    if (h.count === 0) return
    set(g.p50, h.percentile(50))
    set(g.p99, h.percentile(99))
    set(g.max, h.max)
    if (h.max / 1000 > g.peak.value) set(g.peak, h.max)
    h.reset()
  }, windowMs)
  timer.unref() // never what keeps the process alive
  return () => {
    clearInterval(timer)
    h.disable()
  }
}
