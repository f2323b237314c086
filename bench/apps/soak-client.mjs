// @ts-check
// The soak's load (productpage pod, uid 1000, so every connection goes through both sidecars), all paced and
// bounded: short connections (one HTTP request each, Connection: close), bulk streams echoed back and
// checked with sha256, idle connections held open, and requests to the lab's own app (the peer the soak
// kills and restarts). Every failure is printed at once as {type:'error', workload, code, at} (at: epoch
// ms, so the soak can tell failures it caused from the rest); on "stop" (or stdin closing) it finishes what
// is in flight, checks the idle connections are all still open, prints {type:'final', ...} and exits.
// usage: soak-client.mjs JSON   JSON: { host, ports: { http, idle, echo, peer }, shortPerSec, bulkStreams,
//                                       bulkMB, idle, peerPerSec, maxSeconds }
import { createHash, randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { createInterface } from 'node:readline'

const o = JSON.parse(process.argv[2] ?? '{}')
const host = String(o.host)
let stopping = false
const totals = {
  short: { ok: 0, errors: 0 },
  bulk: { streams: 0, bytes: 0, mismatches: 0, errors: 0 },
  idle: { wanted: Number(o.idle), opened: 0, closedEarly: 0, openAtEnd: 0 },
  peer: { ok: 0, errors: 0 },
}
/** in-flight work, so stop can wait for it */
let inFlight = 0

/** @param {string} workload @param {string} code @param {Record<string, unknown>} [extra] */
function report(workload, code, extra = {}) {
  process.stdout.write(JSON.stringify({ type: 'error', workload, code, at: Date.now(), ...extra }) + '\n')
}

/** One HTTP/1.1 request on a new connection; resolves with the error code or null for a 200. @param {number} port */
function oneRequest(port) {
  return new Promise((resolve) => {
    inFlight++
    let head = ''
    let settled = false
    const socket = connect({ host, port })
    const done = (/** @type {string | null} */ code) => {
      if (settled) return
      settled = true
      inFlight--
      socket.destroy()
      resolve(code)
    }
    socket.setTimeout(10_000, () => done('timeout'))
    socket.on('connect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    socket.on('data', (d) => (head += head.length < 64 ? d.toString('latin1', 0, 64) : ''))
    socket.on('error', (err) => done(/** @type {NodeJS.ErrnoException} */ (err).code ?? err.message))
    // a close with no 200 before it is a failure too: the stream was cut short without a reset
    socket.on('end', () => done(head.startsWith('HTTP/1.1 200') ? null : 'closed without a 200'))
  })
}

/** Starts one request every 1000/perSec ms (at most 32 in flight) until stop. @param {'short' | 'peer'} name @param {number} port @param {number} perSec */
function paced(name, port, perSec) {
  if (!(perSec > 0)) return
  let open = 0
  const timer = setInterval(() => {
    if (stopping) return clearInterval(timer)
    if (open >= 32) return
    open++
    void oneRequest(port).then((code) => {
      open--
      if (code === null) totals[name].ok++
      else {
        totals[name].errors++
        report(name, code)
      }
    })
  }, 1000 / perSec)
}

// The same 4 MiB of random bytes for every stream, each starting at its own offset, so no two streams send
// the same sequence and nothing has to be generated per stream.
const pool = randomBytes(4 << 20)
/** One stream of bulkMB through the echo server; loops until stop. */
async function bulkLoop() {
  while (!stopping) {
    await new Promise((resolve) => {
      inFlight++
      const size = Number(o.bulkMB) * 2 ** 20
      const sent = createHash('sha256')
      const got = createHash('sha256')
      let received = 0
      let at = Math.floor(Math.random() * pool.length)
      let written = 0
      let settled = false
      const socket = connect({ host, port: o.ports.echo, allowHalfOpen: true })
      const done = (/** @type {string | null} */ code) => {
        if (settled) return
        settled = true
        inFlight--
        socket.destroy()
        totals.bulk.streams++
        totals.bulk.bytes += received
        if (code) {
          totals.bulk.errors++
          report('bulk', code, { received, size })
        }
        setTimeout(resolve, 300)
      }
      const pump = () => {
        while (written < size) {
          const n = Math.min(64 << 10, size - written, pool.length - at)
          const piece = pool.subarray(at, at + n)
          at = (at + n) % pool.length
          written += n
          sent.update(piece)
          if (!socket.write(piece)) return void socket.once('drain', pump)
        }
        socket.end()
      }
      socket.setTimeout(30_000, () => done('timeout'))
      socket.on('connect', pump)
      socket.on('data', (d) => {
        received += d.length
        got.update(d)
      })
      socket.on('error', (err) => done(/** @type {NodeJS.ErrnoException} */ (err).code ?? err.message))
      socket.on('end', () => {
        if (received !== size || sent.digest('hex') !== got.digest('hex')) {
          totals.bulk.mismatches++
          return done(received !== size ? `short: ${received} of ${size} bytes` : 'sha256 differs')
        }
        done(null)
      })
    })
  }
}

/** @type {import('node:net').Socket[]} */
const idle = []
function openIdle() {
  for (let i = 0; i < totals.idle.wanted; i++) {
    const socket = connect({ host, port: o.ports.idle })
    let greeted = false
    socket.once('data', () => {
      greeted = true
      totals.idle.opened++
    })
    socket.on('error', (err) => report('idle', /** @type {NodeJS.ErrnoException} */ (err).code ?? err.message))
    socket.on('close', () => {
      if (stopping) return
      totals.idle.closedEarly++
      report('idle', greeted ? 'idle connection closed' : 'idle connection never greeted')
    })
    idle.push(socket)
  }
}

async function stop() {
  if (stopping) return
  stopping = true
  const end = Date.now() + 60_000
  while (inFlight > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  totals.idle.openAtEnd = idle.filter((s) => !s.destroyed && s.readyState === 'open').length
  for (const s of idle) s.destroy()
  process.stdout.write(JSON.stringify({ type: 'final', inFlightLeft: inFlight, ...totals }) + '\n')
  process.exit(0)
}

openIdle()
paced('short', o.ports.http, Number(o.shortPerSec))
paced('peer', o.ports.peer, Number(o.peerPerSec))
for (let i = 0; i < Number(o.bulkStreams); i++) void bulkLoop()
createInterface({ input: process.stdin })
  .on('line', (l) => l.trim() === 'stop' && void stop())
  .on('close', () => void stop())
setTimeout(() => void stop(), Number(o.maxSeconds) * 1000).unref()
