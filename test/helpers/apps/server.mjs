// A test app: a TCP server that reports each connection as a JSON line on stdout.
// usage: server.mjs PORT MODE   MODE: echo (echo bytes, end after the client ends)
//                                     late-reply (after the client's FIN, wait, then reply and end)
//                                     reset (reset the connection after the first bytes arrive)
//                                     sink (read and count, reply nothing, end after the client ends)
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'

const [port, mode = 'echo'] = process.argv.slice(2)
const server = createServer({ allowHalfOpen: true }, (socket) => {
  const hash = createHash('sha256')
  let bytes = 0
  const peer = { address: socket.remoteAddress, port: socket.remotePort }
  const local = { address: socket.localAddress, port: socket.localPort }
  socket.on('error', () => {})
  socket.on('data', (chunk) => {
    if (mode === 'reset') {
      process.stdout.write(JSON.stringify({ event: 'reset', peer, bytes: chunk.length }) + '\n')
      return socket.resetAndDestroy()
    }
    bytes += chunk.length
    if (mode === 'sink') return
    hash.update(chunk)
    if (mode === 'echo' && !socket.write(chunk)) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  })
  socket.on('end', () => {
    const report = () => process.stdout.write(JSON.stringify({ event: 'conn', peer, local, bytes, sha256: hash.digest('hex') }) + '\n')
    if (mode === 'late-reply') {
      setTimeout(() => socket.end(`reply after FIN (${bytes} bytes seen)`, report), 300)
    } else {
      socket.end(report)
    }
  })
})
server.listen({ port: Number(port), host: '::' }, () =>
  process.stdout.write(JSON.stringify({ event: 'listening', port: Number(port) }) + '\n'),
)
process.on('SIGTERM', () => process.exit(0))
