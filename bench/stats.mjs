// @ts-check
// From samples (one per round, peer, position and scenario) to medians, min-max and the ratios to direct and
// to HAProxy in the same run. Latency added over direct is paired within a round, then summarised.

/** @typedef {{ round: number, peer: string, position: string, scenario: string, metrics?: Record<string, number>, error?: string }} Sample */
/** @typedef {{ median: number, min: number, max: number, n: number, vsDirect?: number, vsHaproxy?: number }} Figure */
/** @typedef {Record<string, Record<string, Record<string, Figure>>>} Summary scenario -> metric -> config ("peer/position") */

/** @param {number[]} xs */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2
}

/** @param {Sample} s */
export const configOf = (s) => `${s.peer}/${s.position}`

/** Adds added-latency figures (sample minus direct's in the same round) to every non-direct latency sample. @param {Sample[]} samples */
export function withAddedLatency(samples) {
  return samples.map((s) => {
    if (s.peer === 'direct' || !s.metrics || !['fixed-1k', 'http', 'wrk', 'wrk-c10'].includes(s.scenario)) return s
    const direct = samples.find((d) => d.peer === 'direct' && d.round === s.round && d.scenario === s.scenario)?.metrics
    if (!direct) return s
    const m = s.metrics
    return {
      ...s,
      metrics: {
        ...m,
        addedP50: (m.p50 ?? NaN) - (direct.p50 ?? NaN),
        addedP90: (m.p90 ?? NaN) - (direct.p90 ?? NaN),
        addedP99: (m.p99 ?? NaN) - (direct.p99 ?? NaN),
      },
    }
  })
}

/** @param {Sample[]} raw @returns {Summary} */
export function summarise(raw) {
  const samples = withAddedLatency(raw)
  /** @type {Summary} */
  const out = {}
  /** @type {Record<string, Record<string, Record<string, number[]>>>} */
  const values = {}
  for (const s of samples) {
    for (const [metric, v] of Object.entries(s.metrics ?? {})) {
      if (!Number.isFinite(v)) continue
      ;(((values[s.scenario] ??= {})[metric] ??= {})[configOf(s)] ??= []).push(v)
    }
  }
  for (const [scenario, metrics] of Object.entries(values)) {
    for (const [metric, configs] of Object.entries(metrics)) {
      /** @type {Record<string, Figure>} */
      const figs = {}
      for (const [config, xs] of Object.entries(configs))
        figs[config] = { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
      const direct = figs['direct/none']?.median
      for (const [config, f] of Object.entries(figs)) {
        if (direct && config !== 'direct/none') f.vsDirect = f.median / direct
        const position = config.split('/')[1]
        const hap = figs[`haproxy/${position}`]?.median
        // a ratio of latencies added over direct only reads when both were added (above zero)
        const readable = !metric.startsWith('added') || (hap !== undefined && hap > 0 && f.median > 0)
        if (hap && readable && !config.startsWith('haproxy/')) f.vsHaproxy = f.median / hap
      }
      ;(out[scenario] ??= {})[metric] = figs
    }
  }
  return out
}

/** The proxy a figure's suffix names: a sidecar, or the ztunnel (ambient mode: one process for both pods). */
const proxyNames = /** @type {Record<string, string>} */ ({
  Out: 'outbound sidecar',
  In: 'inbound sidecar',
  Ztunnel: 'ztunnel (one process, both pods)',
})

/** How each metric reads: label, unit, which way is better, digits. */
/** @param {string} metric @returns {{ label: string, unit: string, better: 'higher' | 'lower', digits: number }} */
export function describe(metric) {
  const mem = /^rss(Out|In|Ztunnel)MB@(\d+)$/.exec(metric)
  if (mem)
    return {
      label: `RSS of the ${proxyNames[mem[1] ?? ''] ?? ''}, ${Number(mem[2]).toLocaleString('en')} idle conns`,
      unit: 'MB',
      better: 'lower',
      digits: 1,
    }
  /** @type {Record<string, [string, string, 'higher' | 'lower', number]>} */
  const known = {
    MBps: ['throughput', 'MB/s', 'higher', 0],
    rps: ['requests/s', 'req/s', 'higher', 0],
    cps: ['connections/s', 'conn/s', 'higher', 0],
    p50: ['latency p50', 'ms', 'lower', 3],
    p90: ['latency p90', 'ms', 'lower', 3],
    p99: ['latency p99', 'ms', 'lower', 3],
    addedP50: ['added over direct, p50', 'ms', 'lower', 3],
    addedP90: ['added over direct, p90', 'ms', 'lower', 3],
    addedP99: ['added over direct, p99', 'ms', 'lower', 3],
    cpuPer1kReqOut: ['outbound sidecar CPU per 1000 requests', 'CPU s', 'lower', 3],
    cpuPer1kReqIn: ['inbound sidecar CPU per 1000 requests', 'CPU s', 'lower', 3],
    vcpuOut: ['outbound sidecar vCPU at 1000 req/s', 'vCPU', 'lower', 3],
    vcpuIn: ['inbound sidecar vCPU at 1000 req/s', 'vCPU', 'lower', 3],
    cpuPerGBOut: ['outbound sidecar CPU per GB moved', 'CPU s', 'lower', 2],
    cpuPerGBIn: ['inbound sidecar CPU per GB moved', 'CPU s', 'lower', 2],
    cpuPer1kConnOut: ['outbound sidecar CPU per 1000 connections', 'CPU s', 'lower', 3],
    cpuPer1kConnIn: ['inbound sidecar CPU per 1000 connections', 'CPU s', 'lower', 3],
    kbPerConnOut: ['outbound sidecar memory per connection', 'KB', 'lower', 1],
    kbPerConnIn: ['inbound sidecar memory per connection', 'KB', 'lower', 1],
    // ambient mode: one ztunnel serves both pods, so its one process's figures stand where both sidecars' would
    cpuPer1kReqZtunnel: [`${proxyNames.Ztunnel} CPU per 1000 requests`, 'CPU s', 'lower', 3],
    vcpuZtunnel: [`${proxyNames.Ztunnel} vCPU at 1000 req/s`, 'vCPU', 'lower', 3],
    cpuPerGBZtunnel: [`${proxyNames.Ztunnel} CPU per GB moved`, 'CPU s', 'lower', 2],
    cpuPer1kConnZtunnel: [`${proxyNames.Ztunnel} CPU per 1000 connections`, 'CPU s', 'lower', 3],
    kbPerConnZtunnel: [`${proxyNames.Ztunnel} memory per connection`, 'KB', 'lower', 1],
    errors: ['errors', '', 'lower', 0],
  }
  const [label, unit, better, digits] = known[metric] ?? [metric, '', 'higher', 2]
  return { label, unit, better, digits }
}
