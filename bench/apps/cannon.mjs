// HTTP/1.1 keep-alive load with autocannon's engine, latencies taken from each response's own timing
// (float milliseconds) instead of autocannon's whole-millisecond histogram: added latency is sub-millisecond.
// usage: cannon.mjs JSON   JSON = autocannon options ({ url, connections, duration, overallRate?, method?, body? })
// Prints one JSON line: { requests, ms, requestsPerSec, errors, non2xx, latencyMs: {p50, p90, p99, max} }.
import autocannon from 'autocannon'
import { percentiles } from './percentiles.mjs'

const options = JSON.parse(process.argv[2] ?? '{}')
/** @type {number[]} */
const latencies = []
let non2xx = 0
const started = process.hrtime.bigint()
const instance = autocannon(options, (err, result) => {
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  if (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }) + '\n')
    process.exit(1)
  }
  const requests = latencies.length
  const out = { requests, ms, requestsPerSec: (requests / ms) * 1000, errors: result.errors + result.timeouts, non2xx, latencyMs: percentiles(latencies) }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
})
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  if (statusCode < 200 || statusCode > 299) non2xx++
  else latencies.push(responseTime)
})
setTimeout(() => process.exit(2), (Number(options.duration) + 30) * 1000).unref()
