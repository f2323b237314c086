// Every HTTP port of the sidecar answers a method it does not serve the same way: 405 with an Allow header
// listing what it does serve. HEAD behaves as GET wherever GET is served.
import t from 'tap'
import { get, startLoopbackSidecar, type AdminPorts } from './admin-sidecar.js'

interface Endpoint {
  name: string
  port: (p: AdminPorts) => number
  path: string
  allow: string
  /** a method it serves, with what that answers */
  served: string
}

const endpoints: Endpoint[] = [
  { name: '15090', port: (p) => p.prometheus, path: '/stats/prometheus', allow: 'GET, HEAD', served: 'GET' },
  { name: '15020', port: (p) => p.merged, path: '/stats/prometheus', allow: 'GET, HEAD', served: 'GET' },
  { name: '15020', port: (p) => p.merged, path: '/metrics', allow: 'GET, HEAD', served: 'GET' },
  { name: '15021', port: (p) => p.health, path: '/healthz/ready', allow: 'GET, HEAD', served: 'GET' },
  { name: '15000', port: (p) => p.admin, path: '/stats', allow: 'GET, HEAD, POST', served: 'GET' },
  { name: '15000', port: (p) => p.admin, path: '/ready', allow: 'GET, HEAD, POST', served: 'GET' },
  { name: '15000', port: (p) => p.admin, path: '/reset_counters', allow: 'POST', served: 'POST' },
]

const refused = ['DELETE', 'PUT', 'PATCH', 'TRACE', 'OPTIONS']

t.test('methods not served: 405 with Allow, on 15090, 15020, 15021 and 15000', async (t) => {
  const { ports } = await startLoopbackSidecar(t)
  for (const e of endpoints) {
    const methods = [...refused, ...(e.allow.includes('GET') ? [] : ['GET', 'HEAD'])]
    for (const method of methods) {
      const r = await get(e.port(ports), e.path, 10_000, method)
      t.equal(r.status, 405, `${method} ${e.name} ${e.path}: 405`)
      t.equal(r.headers.allow, e.allow, `${method} ${e.name} ${e.path}: Allow: ${e.allow}`)
      if (method !== 'HEAD') t.match(r.body, `Method ${method} not allowed`, `${method} ${e.name} ${e.path}: the body names the method`)
    }
  }
})

t.test('the methods served still answer: GET (or POST), and HEAD as GET without a body', async (t) => {
  const { ports } = await startLoopbackSidecar(t)
  for (const e of endpoints) {
    const r = await get(e.port(ports), e.path, 10_000, e.served)
    t.equal(r.status, 200, `${e.served} ${e.name} ${e.path}: 200`)
    if (!e.allow.includes('HEAD')) continue
    const h = await get(e.port(ports), e.path, 10_000, 'HEAD')
    t.equal(h.status, 200, `HEAD ${e.name} ${e.path}: 200`)
    t.equal(h.body, '', `HEAD ${e.name} ${e.path}: no body`)
    t.equal(h.headers['content-type'], r.headers['content-type'], `HEAD ${e.name} ${e.path}: GET's content type`)
  }
})
