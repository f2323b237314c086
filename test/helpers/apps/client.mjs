// A test app: connects, sends BYTES of deterministic data (optionally paced over MS milliseconds), shuts
// its write side, reads until the peer closes, and prints one JSON line with what it sent and got.
// usage: client.mjs HOST PORT BYTES [PACE_MS]
import { createHash } from 'node:crypto'
import { connect } from 'node:net'

const [host, port, total = '0', paceMs = '0'] = process.argv.slice(2)
const size = Number(total)
const block = Buffer.alloc(64 * 1024)
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24
const sent = createHash('sha256')
const got = createHash('sha256')
let received = 0
let firstReply = ''
const started = Date.now()
const socket = connect({ host, port: Number(port), allowHalfOpen: true })
socket.on('connect', () => pump(0))
function pump(offset) {
  const chunks = Math.max(1, Math.ceil(size / block.length))
  const delay = Number(paceMs) / chunks
  let at = offset
  while (at < size) {
    const n = Math.min(block.length, size - at)
    const piece = block.subarray(0, n)
    sent.update(piece)
    at += n
    const more = socket.write(piece)
    if (delay > 0) return void setTimeout(() => pump(at), delay)
    if (!more) return void socket.once('drain', () => pump(at))
  }
  socket.end()
}
socket.on('data', (chunk) => {
  if (received < 200) firstReply += chunk.subarray(0, 200 - received).toString('latin1')
  received += chunk.length
  got.update(chunk)
})
const finish = (error) => {
  process.stdout.write(
    JSON.stringify({
      sent: size,
      sentSha256: sent.digest('hex'),
      received,
      receivedSha256: got.digest('hex'),
      firstReply,
      error: error ?? null,
      ms: Date.now() - started,
      local: { address: socket.localAddress, port: socket.localPort },
    }) + '\n',
  )
  process.exit(0)
}
socket.on('error', (err) => finish(err.code ?? err.message))
socket.on('end', () => finish())
setTimeout(() => finish('client timeout'), 60_000).unref()
