// The lab's app: a small HTTP service. On GET / it answers with its name and the peer it saw; a pod whose
// app calls another service (productpage -> reviews -> ratings) makes that call and nests the answer.
// usage: node dist/lab/app-server.js SERVICE PORT [UPSTREAM_URL]
import { createServer, request } from 'node:http'
import { endpoint, formatEndpoint, plainAddress } from '../net/address.js'

const [service = 'app', portText = '9080', upstream] = process.argv.slice(2)

function callUpstream(url: string): Promise<unknown> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { connection: 'close' }, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d))
      res.on('end', () => {
        try {
          resolve(JSON.parse(body))
        } catch {
          resolve({ status: res.statusCode, body })
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end()
  })
}

const server = createServer(async (req, res) => {
  const answer: Record<string, unknown> = {
    service,
    path: req.url,
    peer: req.socket.remoteAddress && plainAddress(req.socket.remoteAddress),
    // host:port as everywhere else: [2001:2::20]:9080, not the ambiguous 2001:2::20:9080
    local: formatEndpoint(endpoint(req.socket.localAddress, req.socket.localPort)),
  }
  if (upstream && req.url === '/') answer.upstream = await callUpstream(upstream)
  const body = JSON.stringify(answer) + '\n'
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(Number(portText), '::', () => {
  process.stdout.write(`${service} listening on ${portText}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
