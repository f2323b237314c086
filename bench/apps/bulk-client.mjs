// Bulk TCP throughput: STREAMS connections each send as fast as they can for SECONDS, then shut their write
// side; the sink ends each connection once it has read everything, so the clock stops when every byte arrived.
// Prints one JSON line: { bytes, ms, streams, error }. usage: bulk-client.mjs HOST PORT STREAMS SECONDS
import { connect } from 'node:net'

const [host = '', port = '0', streamsText = '1', secondsText = '1'] = process.argv.slice(2)
const streams = Number(streamsText)
const deadline = Date.now() + Number(secondsText) * 1000
const block = Buffer.alloc(64 * 1024, 0x5a)
const started = process.hrtime.bigint()
let bytes = 0
let done = 0

/** @param {string} [error] */
function finish(error) {
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  process.stdout.write(JSON.stringify({ bytes, ms, streams, error: error ?? null }) + '\n')
  process.exit(0)
}

for (let i = 0; i < streams; i++) {
  const socket = connect({ host, port: Number(port), allowHalfOpen: true })
  const pump = () => {
    while (Date.now() < deadline) {
      bytes += block.length
      if (!socket.write(block)) return void socket.once('drain', pump)
    }
    socket.end()
  }
  socket.on('connect', pump)
  socket.on('data', () => {})
  socket.on('end', () => ++done === streams && finish())
  socket.on('error', (err) => finish(/** @type {NodeJS.ErrnoException} */ (err).code ?? err.message))
}
// Bounded whatever happens on the path.
setTimeout(() => finish('client timeout'), Number(secondsText) * 1000 + 30_000).unref()
