// HBONE with a peer not written here (the issue asks for one client and one server): Python's ssl + h2
// (test/helpers/apps/hbone-peer.py, Debian's python3-h2) as the client of our server, and as the server of
// our client. 1 MB each way, the identities each side saw, and the CONNECT's headers as the peer read them.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { HboneClient, type HboneTunnel } from '../../src/ambient/hbone/index.js'
import { repoRoot } from '../helpers/pods.js'
import { LabCerts, spiffe } from './hbone-certs.js'
import { collect, once, sha256, startApp, startHbone } from './hbone-harness.js'

const certs = new LabCerts(t)
const a = certs.workload('a')
const b = certs.workload('b')
const peerScript = join(repoRoot, 'test/helpers/apps/hbone-peer.py')
const MB = 1024 * 1024

/** Runs the Python peer; its stdout's JSON lines one by one, and its exit. */
function python(tt: { teardown(fn: () => unknown): void }, args: string[]) {
  // Debian's python3 (python3-h2), not one earlier on PATH
  const child = spawn('/usr/bin/python3', [peerScript, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  tt.teardown(() => {
    if (child.exitCode === null) child.kill()
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    async next<T>(): Promise<T> {
      const r = await lines.next()
      if (r.done) throw new Error(`hbone-peer.py ${args[0]} printed nothing more; stderr: ${stderr}`)
      return JSON.parse(r.value) as T
    },
    exited: once<number>(child, 'exit', 20_000),
  }
}

t.test('Python h2 client → our server: 1 MB echoed whole, identities both ways', async (t) => {
  const app = await startApp(t)
  const { server, via } = await startHbone(t, b)
  const tunnel = once<HboneTunnel>(server, 'tunnel')
  const py = python(t, ['client', via.address, String(via.port), a.files.cert, a.files.key, a.files.ca, `127.0.0.1:${app}`, String(MB)])
  const r = await py.next<{
    status: number
    reset: number | null
    sent: number
    received: number
    sentSha256: string
    receivedSha256: string
    peerIds: string[]
  }>()
  t.equal(r.status, 200)
  t.equal(r.reset, null)
  t.equal(r.received, MB)
  t.equal(r.receivedSha256, r.sentSha256, 'sha256 of the echo')
  t.same(r.peerIds, [spiffe('b')], "the Python client saw our server's identity")
  t.equal((await tunnel).peer.identity, spiffe('a'), "our server saw the Python client's identity")
  t.equal(await py.exited, 0)
})

t.test('our client → Python h2 server: 1 MB echoed whole; the CONNECT carries ztunnel headers', async (t) => {
  const py = python(t, ['server', b.files.cert, b.files.key, b.files.ca])
  const { port } = await py.next<{ port: number }>()
  const client = new HboneClient({ identity: a, baggage: { namespace: 'default', workloadName: 'a', serviceName: 'a' } })
  t.teardown(() => client.close())
  const s = await client.connect({
    target: { address: '198.18.0.10', port: 9080 },
    via: { address: '127.0.0.1', port },
    expectIdentity: spiffe('b'),
    source: { address: '198.18.0.9', port: 40000 },
  })
  const sent = randomBytes(MB)
  const echo = collect(s)
  s.end(sent)
  t.equal(sha256(await echo), sha256(sent), 'sha256 of the echo')
  const saw = await py.next<{
    alpn: string
    peerIds: string[]
    method: string
    authority: string
    bytes: number
    headers: Record<string, string>
  }>()
  t.match(saw, { alpn: 'h2', method: 'CONNECT', authority: '198.18.0.10:9080', bytes: MB })
  t.same(saw.peerIds, [spiffe('a')], "the Python server saw our client's identity")
  t.match(saw.headers, {
    forwarded: 'for="198.18.0.9:40000"',
    baggage: 'k8s.namespace.name=default,k8s.deployment.name=a,service.name=a',
    traceparent: /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/,
  })
  t.notOk(':path' in saw.headers || ':scheme' in saw.headers, 'a CONNECT has no :path or :scheme')
  t.equal(await py.exited, 0)
})
