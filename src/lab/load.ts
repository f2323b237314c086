// Load from inside a pod with autocannon (as the app's user, so the capture rules treat it as the app).
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { InvalidFlagError } from '../errors.js'
import { run } from './exec.js'
import { inNetns } from './netns.js'
import { appUser } from './scene.js'

export interface LoadResult {
  label: string
  requestsPerSec: number
  latencyAvgMs: number
  latencyP50Ms: number
  latencyP99Ms: number
  throughputBytesPerSec: number
  total: number
  errors: number
  non2xx: number
}

const autocannonBin = join(dirname(createRequire(import.meta.url).resolve('autocannon/package.json')), 'autocannon.js')

export async function autocannon(label: string, ns: string, url: string, options: { connections: number; durationS: number }): Promise<LoadResult> {
  const argv = [process.execPath, autocannonBin, '-c', String(options.connections), '-d', String(options.durationS), '--json', url]
  const [program, ...args] = inNetns(ns, argv, appUser)
  const r = await run(program!, args, { timeoutMs: (options.durationS + 30) * 1000 })
  const j = JSON.parse(r.stdout) as {
    requests: { average: number; total: number }
    latency: { average: number; p50: number; p99: number }
    throughput: { average: number }
    errors: number
    non2xx: number
  }
  return {
    label,
    requestsPerSec: j.requests.average,
    latencyAvgMs: j.latency.average,
    latencyP50Ms: j.latency.p50,
    latencyP99Ms: j.latency.p99,
    throughputBytesPerSec: j.throughput.average,
    total: j.requests.total,
    errors: j.errors,
    non2xx: j.non2xx,
  }
}

export function renderComparison(results: LoadResult[]): string {
  const rows = [
    ['', ...results.map((r) => r.label)],
    ['requests/s', ...results.map((r) => r.requestsPerSec.toFixed(0))],
    ['latency avg (ms)', ...results.map((r) => r.latencyAvgMs.toFixed(2))],
    ['latency p50 (ms)', ...results.map((r) => String(r.latencyP50Ms))],
    ['latency p99 (ms)', ...results.map((r) => String(r.latencyP99Ms))],
    ['throughput (MB/s)', ...results.map((r) => (r.throughputBytesPerSec / 1e6).toFixed(2))],
    ['requests', ...results.map((r) => String(r.total))],
    ['errors / non-2xx', ...results.map((r) => `${r.errors} / ${r.non2xx}`)],
  ]
  if (results.length === 2 && results[0]!.requestsPerSec > 0) {
    rows.push(['vs first', '1.00x', `${(results[1]!.requestsPerSec / results[0]!.requestsPerSec).toFixed(2)}x`])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ')).join('\n') + '\n'
}

export function positiveInt(flag: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidFlagError(`--${flag}: '${text}' must be a whole number from 1 to ${max}`)
  return n
}
