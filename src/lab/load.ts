// Load from inside a pod with autocannon (as the app's user, so the capture rules treat it as the app).
import { fileURLToPath } from 'node:url'
import { CommandFailedError } from '../errors.js'
import type { CannonResult } from './cannon.js'
import { run } from '../sys/exec.js'
import { inNetns } from '../sys/netns.js'
import { appUser } from './scene.js'

export interface LoadResult extends CannonResult {
  label: string
}

const cannon = fileURLToPath(new URL('./cannon.js', import.meta.url))

/** HTTP/1.1 keep-alive load from inside a pod (src/lab/cannon.ts), as the app's user. */
export async function load(
  label: string,
  ns: string,
  url: string,
  options: { connections: number; durationS: number },
): Promise<LoadResult> {
  const argv = [process.execPath, cannon, JSON.stringify({ url, connections: options.connections, duration: options.durationS })]
  const [program, ...args] = inNetns(ns, argv, appUser)
  const r = await run(program!, args, { timeoutMs: (options.durationS + 40) * 1000, allowFailure: true })
  const last = r.stdout.trim().split('\n').pop() ?? ''
  let result: CannonResult & { error?: string }
  try {
    result = JSON.parse(last) as CannonResult & { error?: string }
  } catch {
    throw new CommandFailedError(`load from ${ns} to ${url} gave no result (exit ${r.code}): ${r.stderr.trim().slice(-300) || last}`)
  }
  if (result.error) throw new CommandFailedError(`load from ${ns} to ${url}: ${result.error}`)
  return { label, ...result }
}

export function renderComparison(results: LoadResult[]): string {
  const ms = (v: number) => v.toFixed(3)
  const rows = [
    ['', ...results.map((r) => r.label)],
    ['requests/s', ...results.map((r) => r.requestsPerSec.toFixed(0))],
    ['latency mean (ms)', ...results.map((r) => ms(r.latencyMs.mean))],
    ['latency p50 (ms)', ...results.map((r) => ms(r.latencyMs.p50))],
    ['latency p90 (ms)', ...results.map((r) => ms(r.latencyMs.p90))],
    ['latency p99 (ms)', ...results.map((r) => ms(r.latencyMs.p99))],
    ['throughput (MB/s)', ...results.map((r) => (r.bytes / 1e6 / (r.ms / 1000)).toFixed(2))],
    ['requests', ...results.map((r) => String(r.requests))],
    ['errors / non-2xx', ...results.map((r) => `${r.errors} / ${r.non2xx}`)],
  ]
  if (results.length === 2 && results[0]!.requestsPerSec > 0) {
    rows.push(['vs first', '1.00x', `${(results[1]!.requestsPerSec / results[0]!.requestsPerSec).toFixed(2)}x`])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ')).join('\n') + '\n'
}
