// The bench's server app (reviews pod, uid 1000). One process, three ports:
//   HTTP_PORT  GET /  -> "ok\n" (keep-alive);  GET /1k -> a 1 KB body;  POST any -> reads the body, "ok\n"
//   SINK_PORT  TCP: read and count, end after the client's FIN (bulk throughput: the FIN marks "all received")
//   IDLE_PORT  TCP: write one byte on accept (proof the whole chain is up), then hold the connection idle
// usage: server.mjs HTTP_PORT SINK_PORT IDLE_PORT
import { createServer as createHttp } from 'node:http'
import { createServer } from 'node:net'

const [httpPort, sinkPort, idlePort] = process.argv.slice(2).map(Number)
const small = Buffer.from('ok\n')
const oneKb = Buffer.alloc(1024, 'x')

const http = createHttp((req, res) => {
  const body = req.url === '/1k' && req.method === 'GET' ? oneKb : small
  // Drain any request body before answering, so POST /1k measures a 1 KB upload.
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
    res.end(body)
  })
})
http.keepAliveTimeout = 65_000

const sink = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => socket.destroy())
  socket.on('data', () => {})
  socket.on('end', () => socket.end())
})

const idle = createServer((socket) => {
  socket.on('error', () => socket.destroy())
  socket.write('.')
})

let listening = 0
const ready = () => ++listening === 3 && process.stdout.write(`bench server listening on ${httpPort} ${sinkPort} ${idlePort}\n`)
http.listen({ port: httpPort, host: '::', backlog: 4096 }, ready)
sink.listen({ port: sinkPort, host: '::', backlog: 4096 }, ready)
idle.listen({ port: idlePort, host: '::', backlog: 4096 }, ready)
process.on('SIGTERM', () => process.exit(0))
