// One request at a time, each on a new connection (HTTP/1.1, Connection: close), for SECONDS: the path the
// walkthrough draws, taken once per request. Prints one JSON line with the count, each request's latency
// (mean and percentiles) and this process's own CPU time, so the client's share can be counted too.
// usage: decompose-client.mjs HOST PORT SECONDS
import { connect } from 'node:net'
/** @type {typeof import('../../src/lab/percentiles.js')} */
const { percentiles } = await import(new URL('../../dist/lab/percentiles.js', import.meta.url).href)

const [host = '', port = '0', secondsText = '1'] = process.argv.slice(2)
const deadline = Date.now() + Number(secondsText) * 1000
const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
/** @type {number[]} */
const latencies = []
let errors = 0
const cpu0 = process.cpuUsage()
const t0 = process.hrtime.bigint()

function one() {
  if (Date.now() >= deadline) return report()
  const start = process.hrtime.bigint()
  let ok = false
  const socket = connect({ host, port: Number(port) }, () => socket.write(request))
  socket.on('data', (chunk) => (ok ||= chunk.toString('latin1', 0, 12) === 'HTTP/1.1 200'))
  socket.on('error', () => {})
  socket.on('close', () => {
    if (ok) latencies.push(Number(process.hrtime.bigint() - start) / 1e6)
    else errors++
    if (errors > 50) return report()
    setImmediate(one)
  })
}

function report() {
  const cpu = process.cpuUsage(cpu0)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const mean = latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1)
  process.stdout.write(
    JSON.stringify({
      requests: latencies.length,
      errors,
      ms,
      meanMs: mean,
      latenciesMs: percentiles(latencies),
      cpuUs: cpu.user + cpu.system,
    }) + '\n',
  )
  process.exit(0)
}

one()
setTimeout(report, Number(secondsText) * 1000 + 30_000).unref()
