// A test app for the fault suite: a TCP server whose peers misbehave on purpose. Reports JSON lines on stdout.
// usage: fault-server.mjs PORT MODE [BYTES]
//   source BYTES  on accept, send BYTES of deterministic data with backpressure, then end; never read what the
//                 client sends (so a kill -9 finds unread bytes and the kernel resets instead of a clean FIN).
//                 {event:'done', sent, sha256} once all is written, {event:'closed', sent, error} on a cut
//   stall         read nothing until SIGUSR1, then read everything, hash it, and end after the client's FIN:
//                 {event:'conn', bytes, sha256}
//   echo          every byte back (pipe: backpressure and half-close)
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'

const [port = '0', mode = 'echo', bytesText = '0'] = process.argv.slice(2)
const total = Number(bytesText)
const block = Buffer.alloc(64 * 1024)
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
/** @type {import('node:net').Socket[]} */
const stalled = []
let resumed = false

const server = createServer({ allowHalfOpen: true, pauseOnConnect: mode !== 'echo' }, (socket) => {
  socket.on('error', () => {})
  if (mode === 'echo') return void socket.pipe(socket)
  if (mode === 'source') {
    const hash = createHash('sha256')
    let sent = 0
    let done = false
    socket.on('close', (hadError) => !done && out({ event: 'closed', sent, error: hadError }))
    const pump = () => {
      while (sent < total) {
        const piece = block.subarray(0, Math.min(block.length, total - sent))
        hash.update(piece)
        sent += piece.length
        if (!socket.write(piece)) return void socket.once('drain', pump)
      }
      socket.end(() => {
        done = true
        out({ event: 'done', sent, sha256: hash.digest('hex') })
      })
    }
    return pump()
  }
  // stall
  const hash = createHash('sha256')
  let bytes = 0
  socket.on('data', (chunk) => {
    bytes += chunk.length
    hash.update(chunk)
  })
  socket.on('end', () => socket.end(() => out({ event: 'conn', bytes, sha256: hash.digest('hex') })))
  if (resumed) socket.resume()
  else stalled.push(socket)
})
process.on('SIGUSR1', () => {
  resumed = true
  for (const s of stalled.splice(0)) s.resume()
  out({ event: 'resumed' })
})
server.listen({ port: Number(port), host: '::', backlog: 4096 }, () => out({ event: 'listening', port: Number(port) }))
process.on('SIGTERM', () => process.exit(0))
