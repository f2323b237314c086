// A bounded DNS load client (dnsperf-like): COUNT queries for NAME over UDP to SERVER:53 with CONCURRENCY
// outstanding, each timed from send to its reply (matched by ID on its own socket). Stops after COUNT or
// MAX_SECONDS, whichever first; a query unanswered after 2 s counts as lost. Prints one JSON line.
// usage: node dns-client.mjs SERVER NAME COUNT CONCURRENCY MAX_SECONDS
import { createSocket } from 'node:dgram'
import dnsPacket from 'dns-packet'

const [server = '198.18.0.53', name = 'db.lab.test', countText = '10000', concText = '16', maxText = '20'] = process.argv.slice(2)
const count = Number(countText)
const concurrency = Number(concText)
const deadline = Date.now() + Number(maxText) * 1000
/** @type {number[]} */
const latencies = []
let sent = 0
let lost = 0
let errors = 0
/** @type {Record<number, number>} */
const rcodes = {}

/** @returns {Promise<void>} */
function worker() {
  return new Promise((resolve) => {
    const socket = createSocket('udp4')
    let id = 0
    let started = 0n
    /** @type {NodeJS.Timeout | undefined} */
    let timer
    const next = () => {
      if (sent >= count || Date.now() > deadline) {
        socket.close()
        return resolve()
      }
      sent++
      id = (id + 1) & 0xffff
      const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] })
      started = process.hrtime.bigint()
      timer = setTimeout(() => (lost++, next()), 2000)
      socket.send(q, 53, server, (err) => err && errors++)
    }
    socket.on('message', (msg) => {
      if (msg.readUInt16BE(0) !== id) return
      clearTimeout(timer)
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
      const rcode = msg.readUInt16BE(2) & 0xf
      rcodes[rcode] = (rcodes[rcode] ?? 0) + 1
      next()
    })
    socket.bind(0, next)
  })
}

const t0 = process.hrtime.bigint()
await Promise.all(Array.from({ length: concurrency }, worker))
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
latencies.sort((a, b) => a - b)
const q = (/** @type {number} */ p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null
process.stdout.write(
  JSON.stringify({
    server,
    name,
    sent,
    answered: latencies.length,
    lost,
    errors,
    rcodes,
    seconds,
    qps: latencies.length / seconds,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: latencies.at(-1) ?? null,
  }) + '\n',
)
