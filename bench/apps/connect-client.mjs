// New connections per second: CONCURRENCY loops, each opens a connection, sends one HTTP/1.1 request with
// `Connection: close`, reads the answer until the server closes, and starts over, for SECONDS.
// Prints one JSON line: { connections, ms, errors, latenciesMs: {p50, p90, p99} }.
// usage: connect-client.mjs HOST PORT CONCURRENCY SECONDS
import { connect } from 'node:net'
/** @type {typeof import('../../src/lab/percentiles.js')} */
const { percentiles } = await import(new URL('../../dist/lab/percentiles.js', import.meta.url).href)

const [host = '', port = '0', concurrencyText = '1', secondsText = '1'] = process.argv.slice(2)
const deadline = Date.now() + Number(secondsText) * 1000
const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
const started = process.hrtime.bigint()
/** @type {number[]} */
const latencies = []
let errors = 0
let running = Number(concurrencyText)

function loop() {
  if (Date.now() >= deadline) {
    if (--running === 0) report()
    return
  }
  const t0 = process.hrtime.bigint()
  let ok = false
  const socket = connect({ host, port: Number(port) }, () => socket.write(request))
  socket.on('data', (chunk) => (ok ||= chunk.toString('latin1', 0, 12) === 'HTTP/1.1 200'))
  socket.on('error', () => {})
  socket.on('close', () => {
    if (ok) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6)
    else errors++
    setImmediate(loop)
  })
}

function report() {
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  process.stdout.write(JSON.stringify({ connections: latencies.length, ms, errors, latenciesMs: percentiles(latencies) }) + '\n')
  process.exit(0)
}

for (let i = 0; i < running; i++) loop()
setTimeout(report, Number(secondsText) * 1000 + 30_000).unref()
