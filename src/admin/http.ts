// The node:http plumbing shared by the admin, health and metrics ports: bind (a busy port stops start-up
// with an error naming it), turn requests into AdminRequest, write AdminResponse, close promptly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from '../logger.js'
import { listenFailure } from '../errors.js'
import type { AdminRequest, AdminResponse } from './router.js'
import { text } from './router.js'

export type Handler = (req: AdminRequest) => Promise<AdminResponse>

export interface HttpEndpoint {
  readonly name: string
  readonly port: number
  close(): Promise<void>
}

export function toAdminRequest(req: IncomingMessage): AdminRequest {
  const url = new URL(req.url ?? '/', 'http://admin')
  return { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams }
}

async function respond(handler: Handler, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  let out: AdminResponse
  try {
    out = await handler(toAdminRequest(req))
  } catch (err) {
    log.error({ err, path: req.url }, 'admin handler failed')
    out = text(`internal error: ${(err as Error).message}\n`, 500)
  }
  res.writeHead(out.status, {
    ...out.headers,
    'content-type': out.contentType ?? 'text/plain; charset=UTF-8',
    'cache-control': 'no-cache, max-age=0',
  })
  res.end(req.method === 'HEAD' ? undefined : out.body)
}

/** Starts one HTTP endpoint; rejects with a ListenError naming `name` when the port cannot be bound. */
export function serveHttp(name: string, host: string, port: number, handler: Handler, log: Logger): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    // The body of an admin POST carries nothing; drain it so keep-alive connections stay usable.
    req.resume()
    void respond(handler, req, res, log)
  })
  // Admin requests are short; an idle keep-alive client must not hold up the proxy's exit.
  server.keepAliveTimeout = 1000
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenFailure(name, host, port, err))
    server.once('error', onError)
    server.listen({ host, port, ipv6Only: false }, () => {
      server.off('error', onError)
      server.on('error', (err) => log.error({ err, endpoint: name }, 'http endpoint error'))
      log.debug({ endpoint: name, host, port }, 'http endpoint listening')
      resolve({
        name,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          }),
      })
    })
  })
}
