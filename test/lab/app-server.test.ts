// The lab's app answers with the peer and the local address it saw, in the one address form: IPv6 in
// brackets ([::1]:PORT, not the ambiguous ::1:PORT) and IPv4 callers of its dual-stack socket made plain.
// Runs the built script (dist/), as the lab does, on loopback.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const script = fileURLToPath(new URL('../../dist/lab/app-server.js', import.meta.url))

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '::')
  await once(s, 'listening')
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

function fetchJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d))
      res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>))
    }).on('error', reject)
  })
}

t.test('peer and local address: IPv6 bracketed, IPv4 plain', async (t) => {
  const port = await freePort()
  const app = spawn(process.execPath, [script, 'reviews', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => app.kill())
  await once(app.stdout, 'data')
  t.match(await fetchJson(`http://[::1]:${port}/`), { service: 'reviews', peer: '::1', local: `[::1]:${port}` })
  t.match(await fetchJson(`http://127.0.0.1:${port}/`), { service: 'reviews', peer: '127.0.0.1', local: `127.0.0.1:${port}` })
})
