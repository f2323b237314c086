// A program run inside a pod: HTTP/1.1 load with autocannon's engine, each response's latency taken from its
// own timing (float milliseconds) rather than autocannon's whole-millisecond histogram. The demo and the
// benchmarks both use it. usage: node dist/lab/cannon.js JSON
//   JSON: autocannon's options ({ url, connections, duration, overallRate?, method?, body? })
// Prints one JSON line (CannonResult) and exits; it gives up on its own 30 s after the duration.
import autocannon from 'autocannon'
import { percentiles, type Percentiles } from './percentiles.js'

export interface CannonResult {
  requests: number
  ms: number
  requestsPerSec: number
  bytes: number
  errors: number
  non2xx: number
  latencyMs: Percentiles
}

const options = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>
const latencies: number[] = []
let non2xx = 0
const started = process.hrtime.bigint()
const instance = autocannon(options, (err, result) => {
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }) + '\n')
    process.exit(1)
  }
  const out: CannonResult = {
    requests: latencies.length,
    ms,
    requestsPerSec: (latencies.length / ms) * 1000,
    bytes: result.throughput.total,
    errors: result.errors + result.timeouts,
    non2xx,
    latencyMs: percentiles(latencies),
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
})
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  if (statusCode < 200 || statusCode > 299) non2xx++
  else latencies.push(responseTime)
})
setTimeout(() => process.exit(2), (Number(options.duration) + 30) * 1000).unref()
