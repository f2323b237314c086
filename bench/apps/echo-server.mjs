// The soak's echo server (reviews pod, uid 1000): every byte back on the same connection, with
// backpressure (pipe) and half-close (allowHalfOpen: the client's FIN ends our side once all is echoed).
// usage: echo-server.mjs PORT
import { createServer } from 'node:net'

const port = Number(process.argv[2] ?? 9093)
const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => socket.destroy())
  socket.pipe(socket)
})
server.listen({ port, host: '::', backlog: 1024 }, () => process.stdout.write(`echo server listening on ${port}\n`))
process.on('SIGTERM', () => process.exit(0))
