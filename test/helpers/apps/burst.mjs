// A test app: opens COUNT connections to HOST:PORT at once, sends a few bytes on each, and prints one JSON
// line once every one has closed: how many closed, how many bytes came back, the errors seen.
// usage: burst.mjs HOST PORT COUNT
import { connect } from 'node:net'

const [host, port, count = '1'] = process.argv.slice(2)
const n = Number(count)
let closed = 0
let bytes = 0
const errors = []
for (let i = 0; i < n; i++) {
  const socket = connect({ host, port: Number(port) })
  socket.on('connect', () => socket.write('hello\n'))
  socket.on('data', (chunk) => (bytes += chunk.length))
  socket.on('error', (err) => errors.push(err.code ?? err.message))
  socket.on('close', () => {
    if (++closed === n) process.stdout.write(JSON.stringify({ closed, bytes, errors }) + '\n')
  })
  // a connection nobody closes would hang the test: end it after a while from this side
  socket.setTimeout(10_000, () => socket.destroy(new Error('no close within 10 s')))
}
