// HBONE between two pods through the ztunnel stand-in (issue 20), with real namespaces and istio-cni's in-pod
// rules: a workload table (--local-xds) naming both pods HBONE, the lab CA and one workload certificate per
// service account (--ca-file, --identity-dir). The client pod's outbound goes to the server pod's 15008 as
// mutual TLS + HTTP/2 CONNECT; tcpdump on the pods' veth shows 15008 and never the bytes in clear, while a
// destination not in the table (the server's IPv6 address) still goes plain. A peer gone mid-stream and a peer
// with the wrong identity end the client's connection visibly, counted and logged.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { issueWorkload, makeCa } from '../../src/ambient/certs.js'
import { addNetns, deleteNetns, execIn, inNetns } from '../../src/sys/netns.js'
import { engineFlags } from '../helpers/engine.js'
import {
  eventually,
  podPair,
  repoRoot,
  runClient,
  spawnIn,
  startServerApp,
  SIDECAR_READY_MS,
  type Pod,
  type Proc,
} from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

const opts = rootOnly()
const cli = join(repoRoot, 'dist/cli.js')
const markerClient = join(repoRoot, 'test/helpers/apps/marker-client.mjs')
const appPort = 9080
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`

interface Teardown {
  teardown(fn: () => unknown): void
  passing?(): boolean
  comment?(...args: unknown[]): void
}

/** Two mesh pods, a node namespace, the CA and both pods' certificates in the client's scratch folder. */
async function meshPair(t: Teardown, serverAccount = 'server') {
  const { client, server } = await podPair(t, { rules: false })
  for (const p of [client, server]) await execIn(p.ns, ['node', cli, 'inpod-rules', '--ipv6'])
  const node = `${client.ns}-node`
  await addNetns(node)
  t.teardown(() => deleteNetns(node))
  const ca = await makeCa(join(client.dir, 'ca'))
  for (const sa of ['client', 'server']) await issueWorkload(ca, join(client.dir, 'identity', 'default', sa), { serviceAccount: sa })
  const table = join(client.dir, 'workloads.json')
  const workload = (name: string, sa: string, addresses: string[]) => ({
    name,
    namespace: 'default',
    serviceAccount: sa,
    addresses,
    node: 'node',
    protocol: 'HBONE',
  })
  // the server's IPv6 address is left out: a destination the table does not know goes plain (the control)
  writeFileSync(
    table,
    JSON.stringify({ workloads: [workload('client', 'client', [client.ip]), workload('server', serverAccount, [server.ip])] }),
  )
  const flags = ['--local-xds', table, '--ca-file', ca.cert, '--identity-dir', join(client.dir, 'identity')]
  return { client, server, node, flags }
}

async function startZtunnel(t: Teardown, node: string, pods: [string, Pod][], extra: string[]): Promise<Proc> {
  const list = pods.map(([name, p]) => `${name}=/run/netns/${p.ns}`).join(',')
  const proc = spawnIn(t, node, ['node', cli, 'ztunnel', '--pod', list, '--log-format', 'json', ...engineFlags(), ...extra])
  // a failed test shows what the ztunnel logged
  t.teardown(() => t.passing?.() === false && t.comment?.(proc.stderr.slice(-40).join('\n')))
  await proc.waitFor(/ztunnel ready/, 'stderr', SIDECAR_READY_MS)
  return proc
}

/** One ztunnel serving both pods, as the node's would. */
function bothPods(t: Teardown, node: string, client: Pod, server: Pod, flags: string[]): Promise<Proc> {
  return startZtunnel(
    t,
    node,
    [
      ['client', client],
      ['server', server],
    ],
    flags,
  )
}

/** The marker client in the pod (uid 1000, an app); resolves with its last JSON line. */
async function send(t: Teardown, pod: Pod, host: string, text: string): Promise<{ received: string; error: string | null }> {
  const p = spawnIn(t, pod.ns, ['node', markerClient, host, String(appPort), text, 'once'], { uid: 1000, gid: 1000 })
  // the child's 'close' comes after its last line was read ('exit' may come before it)
  await new Promise((resolve) => p.child.once('close', resolve))
  return JSON.parse(p.stdout.find((l) => l.includes('"event":"closed"')) ?? '{}') as { received: string; error: string | null }
}

async function podStats(node: string, pod: string): Promise<Record<string, number>> {
  const r = await execIn(node, ['curl', '-s', `http://127.0.0.1:15000/stats?pod=${pod}&format=json`])
  return Object.fromEntries((JSON.parse(r.stdout) as { stats: { name: string; value: number }[] }).stats.map((s) => [s.name, s.value]))
}

t.test('productpage→reviews over HBONE: bytes whole, the app sees the real client, both identities logged', opts, async (t) => {
  const { client, server, node, flags } = await meshPair(t)
  const z = await bothPods(t, node, client, server, flags)
  const app = await startServerApp(t, server, appPort)
  const r = await runClient(t, client, server.ip, appPort, 2_000_000)
  t.equal(r.error, null)
  t.equal(r.received, 2_000_000, 'the echo came back whole')
  t.equal(r.receivedSha256, r.sentSha256, 'sha256 both ways')
  const seen = JSON.parse(await app.waitFor(/"event":"conn"/)) as { peer: { address: string }; sha256: string }
  t.equal(seen.peer.address.replace(/^::ffff:/, ''), client.ip, "the app sees the client pod's address")
  t.equal(seen.sha256, r.sentSha256)
  const access = await eventually(() => {
    const lines = z.stdout.filter((l) => l.includes('connection complete'))
    return lines.length >= 2 && lines
  })
  const out = access.find((l) => l.includes('direction="outbound"'))
  const inb = access.find((l) => l.includes('direction="inbound"'))
  for (const [what, line] of [
    ['outbound', out],
    ['inbound', inb],
  ] as const) {
    t.match(line, `src.identity="${spiffe('client')}"`, `${what}: src.identity`)
    t.match(line, `dst.identity="${spiffe('server')}"`, `${what}: dst.identity`)
  }
  t.match(out, `dst.addr=${server.ip}:15008`, 'outbound: dst.addr is the peer 15008, as ztunnel logs it')
  t.match(out, `dst.hbone_addr=${server.ip}:${appPort}`, 'outbound: dst.hbone_addr the target')
  t.match(
    await podStats(node, 'server'),
    { 'ztunnel.hbone.inbound.tunnels': 1, 'ztunnel.hbone.inbound.server.sessions': 1, 'ztunnel.hbone.inbound.server.tls_failures': 0 },
    "the server pod's 15008: one session, one tunnel",
  )
  t.match(await podStats(node, 'client'), { 'ztunnel.hbone.outbound.tunnels': 1 }, "the client pod's outbound: one tunnel")
  const metrics = (await execIn(node, ['curl', '-s', 'http://127.0.0.1:15020/metrics'])).stdout
  t.match(
    metrics,
    new RegExp(
      `istio_tcp_connections_opened_total\\{reporter="source",[^}]*source_principal="${spiffe('client')}"[^}]*destination_principal="${spiffe('server')}"[^}]*connection_security_policy="mutual_tls"\\} 1`,
    ),
    'the source metrics carry both principals and mutual_tls',
  )
})

t.test('on the wire: TCP to 15008 and never the marker; the same request to a destination not in the table is clear', opts, async (t) => {
  const { client, server, node, flags } = await meshPair(t)
  await bothPods(t, node, client, server, flags)
  await startServerApp(t, server, appPort)
  const capture = async (host: string, marker: string) => {
    const file = join(client.dir, `${marker}.pcap`)
    const [program, ...args] = inNetns(client.ns, ['tcpdump', '-i', 'eth0', '-n', '--immediate-mode', '-U', '-w', file, 'tcp'])
    const dump = spawn(program!, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    t.teardown(() => dump.kill('SIGKILL'))
    // tcpdump says "listening on eth0" once its capture is open; --immediate-mode: without it, packets still in
    // the kernel's ring buffer when SIGINT comes are never written
    await new Promise<void>((resolve, reject) => {
      dump.stderr.on('data', (b: Buffer) => b.toString().includes('listening on') && resolve())
      dump.once('exit', (code) => reject(new Error(`tcpdump exited ${code}`)))
    })
    const r = await send(t, client, host, marker)
    t.equal(r.received, marker, `${host}: the echo came back`)
    const exited = new Promise((resolve) => dump.once('exit', resolve))
    dump.kill('SIGINT')
    await exited
    const raw = readFileSync(file)
    const text = (await execIn(client.ns, ['tcpdump', '-n', '-r', file])).stdout
    return { clear: raw.includes(Buffer.from(marker)), text }
  }
  const secret = `hbone-marker-${process.pid}-${Date.now()}`
  const mesh = await capture(server.ip, secret)
  t.match(mesh.text, new RegExp(`> ${server.ip.replaceAll('.', '\\.')}\\.15008:`), "TCP to the server pod's 15008")
  t.notMatch(mesh.text, new RegExp(`\\.${appPort}:`), 'no TCP to the app port on the wire')
  t.equal(mesh.clear, false, 'the marker is nowhere in the capture')
  const control = `plain-marker-${process.pid}-${Date.now()}`
  const plain = await capture(server.ip6, control)
  t.equal(plain.clear, true, 'control: the marker is in clear to a destination out of the table')
})

t.test("the peer's ztunnel killed mid-stream: the client's connection closes, counted and logged", opts, async (t) => {
  const { client, server, node, flags } = await meshPair(t)
  // one ztunnel per pod, so the server's can die alone (the second without admin ports: the first has them)
  const zc = await startZtunnel(t, node, [['client', client]], flags)
  const zs = await startZtunnel(t, node, [['server', server]], [...flags, '--admin-port', '0', '--stats-port', '0', '--ready-port', '0'])
  await startServerApp(t, server, appPort)
  const p = spawnIn(t, client.ns, ['node', markerClient, server.ip, String(appPort), 'held-open', 'hold'], { uid: 1000, gid: 1000 })
  await p.waitFor(/"event":"echoed"/, 'stdout', 30_000)
  zs.child.kill('SIGKILL')
  // the child's 'close' comes after its last line was read ('exit' may come before it)
  await new Promise((resolve) => p.child.once('close', resolve))
  const end = JSON.parse(p.stdout.find((l) => l.includes('"event":"closed"')) ?? '{}') as { error: string | null }
  // before splice.ts knew a dead session's streams, the client read a FIN here and exited without an error
  t.equal(end.error, 'ECONNRESET', 'the client sees a reset, not a clean end', { client: p.stdout })
  await zc.waitFor(/HBONE tunnel reset/, 'stderr', 10_000)
  t.equal((await podStats(node, 'client'))['ztunnel.hbone.outbound.reset'], 1, 'counted')
})

t.test('a destination whose certificate is not the identity the table names is refused, counted and logged', opts, async (t) => {
  const { client, server, node, flags } = await meshPair(t, 'reviews')
  const z = await bothPods(t, node, client, server, flags)
  const app = await startServerApp(t, server, appPort)
  const r = await send(t, client, server.ip, 'must-not-arrive')
  t.equal(r.received, '', 'nothing came back')
  const line = await z.waitFor(/HBONE connect failed/, 'stderr', 10_000)
  t.match(line, `did not present the expected identity ${spiffe('reviews')}, got ${spiffe('server')}`)
  t.equal((await podStats(node, 'client'))['ztunnel.hbone.outbound.failed.identity'], 1, 'counted by reason')
  t.notOk(
    app.stdout.some((l) => l.includes('"event":"conn"')),
    'the app saw no connection',
  )
})

t.test('garbage, HTTP/1.1 and a client without a certificate on 15008: refused, counted, logged once a burst', opts, async (t) => {
  const { client, server, node, flags } = await meshPair(t)
  const z = await bothPods(t, node, client, server, flags)
  await startServerApp(t, server, appPort)
  // From inside the server pod to its own address: over lo, which the in-pod rules let through unredirected, so
  // these reach the ztunnel's 15008 as they are. All three from one process at once: one burst.
  const garbage = Buffer.from('\x00\x01garbage\xff\xfe'.repeat(50)).toString('base64')
  const script = `
    const net = require('node:net'), tls = require('node:tls')
    const done = (s) => new Promise((resolve) => { s.on('data', () => {}); s.on('error', () => {}); s.on('close', resolve) })
    const raw = (bytes) => { const s = net.connect(15008, '${server.ip}', () => s.write(bytes)); return done(s) }
    // TLS 1.3 with h2 but no client certificate: the server asks for one and refuses the handshake
    const noCert = tls.connect({ host: '${server.ip}', port: 15008, ALPNProtocols: ['h2'], rejectUnauthorized: false }, () => noCert.write('x'))
    Promise.all([raw('GET / HTTP/1.1\\r\\nHost: reviews\\r\\n\\r\\n'), raw(Buffer.from('${garbage}', 'base64')), done(noCert)])
      .then(() => process.exit(0))
    setTimeout(() => process.exit(3), 10000)
  `
  await execIn(server.ns, ['node', '-e', script])
  let stats = await podStats(node, 'server')
  for (let i = 0; i < 50 && stats['ztunnel.hbone.inbound.server.tls_failures'] !== 3; i++) {
    await new Promise((r) => setTimeout(r, 200))
    stats = await podStats(node, 'server')
  }
  t.equal(stats['ztunnel.hbone.inbound.server.tls_failures'], 3, 'three TLS failures counted')
  t.equal(stats['ztunnel.hbone.inbound.tunnels'] ?? 0, 0, 'no tunnel opened')
  const first = z.stderr.filter((l) => l.includes('HBONE connection from'))
  t.equal(first.length, 1, 'one warning for the burst')
  t.match(first[0], `HBONE connection from ${server.ip}:`, 'it names the source')
  t.match(first[0], 'refused: the TLS handshake failed', 'and why')
  t.match(await z.waitFor(/more HBONE connections refused/, 'stderr', 5000), /2 more HBONE connections refused in [\d.]+ s, from/)
  // and the pod is served as before
  const r = await runClient(t, client, server.ip, appPort, 100_000)
  t.equal(r.receivedSha256, r.sentSha256, 'a mesh client still gets through, sha256 both ways')
})
