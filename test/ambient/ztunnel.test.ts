// The ztunnel stand-in with real in-pod rules: two pods on a veth, istio-cni's rules applied in both, and one
// ztunnel in a namespace of its own (the node) serving both through listeners it made inside them. Bytes go
// through intact both ways, the app sees its real client's address (IPv4 and IPv6), each socket the ztunnel
// holds is in the pod's namespace while its process is outside, and a pod removed stops being served.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { addNetns, deleteNetns, execIn } from '../../src/sys/netns.js'
import { engineFlags } from '../helpers/engine.js'
import { podPair, repoRoot, runClient, spawnIn, startServerApp, SIDECAR_READY_MS, type Pod } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { eventually } from '../helpers/wait.js'

const opts = rootOnly()

interface Teardown {
  teardown(fn: () => unknown): void
}
const cli = join(repoRoot, 'dist/cli.js')
const appPort = 9080

async function inpodRules(pod: Pod): Promise<void> {
  await execIn(pod.ns, ['node', cli, 'inpod-rules', '--ipv6', '--redirect-dns'])
}

/** Two pods in the mesh and a node namespace for the ztunnel; all removed at teardown. */
async function ambientPair(t: Teardown) {
  const { client, server } = await podPair(t, { rules: false })
  for (const p of [client, server]) await inpodRules(p)
  const node = `${client.ns}-node`
  await addNetns(node)
  t.teardown(() => deleteNetns(node))
  return { client, server, node }
}

async function startZtunnel(t: Teardown, node: string, pods: Pod[], extra: string[] = []) {
  const list = pods.map((p) => `${p.ns.endsWith('-c') ? 'client' : 'server'}=/run/netns/${p.ns}`).join(',')
  const proc = spawnIn(t, node, ['node', cli, 'ztunnel', '--pod', list, '--log-format', 'json', ...engineFlags(), ...extra])
  await proc.waitFor(/ztunnel ready/, 'stderr', SIDECAR_READY_MS)
  return proc
}

/** The app's report of its connection (server.mjs prints one JSON line per connection). */
async function appSaw(app: { waitFor(p: RegExp): Promise<string> }): Promise<{ peer: { address: string }; sha256: string; bytes: number }> {
  return JSON.parse(await app.waitFor(/"event":"conn"/)) as { peer: { address: string }; sha256: string; bytes: number }
}

t.test('both pods served from the node: bytes intact, the app sees the real client', opts, async (t) => {
  const { client, server, node } = await ambientPair(t)
  const z = await startZtunnel(t, node, [client, server])
  const app = await startServerApp(t, server, appPort)

  const r = await runClient(t, client, server.ip, appPort, 2_000_000)
  t.equal(r.error, null)
  t.equal(r.received, 2_000_000, 'the echo came back whole')
  t.equal(r.receivedSha256, r.sentSha256, 'sha256 both ways')
  const seen = await appSaw(app)
  t.equal(seen.peer.address.replace(/^::ffff:/, ''), client.ip, "the app sees the client pod's own address, not the ztunnel's")
  t.equal(seen.sha256, r.sentSha256)

  const r6 = await runClient(t, client, server.ip6, appPort, 100_000)
  t.equal(r6.receivedSha256, r6.sentSha256, 'IPv6: sha256 both ways')
  const seen6 = await eventually(() => {
    const line = app.stdout.filter((l) => l.includes('"event":"conn"'))[1]
    return line === undefined ? undefined : (JSON.parse(line) as { peer: { address: string } })
  })
  t.equal(seen6.peer.address, client.ip6, 'IPv6: the app sees the client pod')

  // Both hops went through the ztunnel: the client's outbound and the server's inbound, as ztunnel logs them.
  const access = await eventually(() => {
    const lines = z.stdout.filter((l) => l.includes('connection complete'))
    return lines.length >= 4 && lines
  })
  t.ok(
    access.some((l) => /direction="outbound"/.test(l) && l.includes(`dst.addr=${server.ip}:${appPort}`)),
    'an outbound line',
  )
  t.ok(
    access.some((l) => /direction="inbound"/.test(l) && l.includes(`src.addr=${client.ip}:`)),
    'an inbound line',
  )
})

t.test("the ztunnel's sockets live in the pods' namespaces, owned by a process outside them", opts, async (t) => {
  const { client, server, node } = await ambientPair(t)
  const z = await startZtunnel(t, node, [client, server])
  for (const p of [client, server]) {
    const ss = await execIn(p.ns, ['ss', '-Htlnp'])
    for (const port of [15001, 15006, 15008, 15053])
      t.match(ss.stdout, new RegExp(`:${port}\\b.*pid=${z.child.pid}\\b`), `${p.ns}: ${port}`)
  }
  const own = await execIn(node, ['ss', '-Htln'])
  t.notMatch(own.stdout, /:1500[168]\b/, "none of them in the node's own namespace")
})

/** The node agent serving pods over ZDS from a pods file in the pods' scratch folder. */
async function startAgent(t: Teardown, node: string, pods: Pod[], dir: string) {
  const file = join(dir, 'pods.json')
  const socket = join(dir, 'zds.sock')
  const write = (list: Pod[]) =>
    writeFileSync(file, JSON.stringify(list.map((p) => ({ name: p.ns.endsWith('-c') ? 'client' : 'server', netns: `/run/netns/${p.ns}` }))))
  write(pods)
  const agent = spawnIn(t, node, ['node', cli, 'cni-agent', '--zds', socket, '--pods', file, '--log-format', 'json'])
  await agent.waitFor(/cni agent ready/, 'stderr')
  return { agent, socket, write }
}

async function listening(pod: Pod): Promise<string> {
  return (await execIn(pod.ns, ['ss', '-Htln'])).stdout
}

t.test('pods from the node agent over ZDS: a restarted ztunnel takes them up again; a pod removed is let go', opts, async (t) => {
  const { client, server, node } = await ambientPair(t)
  const { agent, socket, write } = await startAgent(t, node, [client, server], client.dir)
  const zArgs = ['node', cli, 'ztunnel', '--zds', socket, '--log-format', 'json', ...engineFlags()]
  const first = spawnIn(t, node, zArgs)
  await first.waitFor(/ztunnel ready/, 'stderr', SIDECAR_READY_MS)
  await startServerApp(t, server, appPort)
  t.equal((await runClient(t, client, server.ip, appPort, 10_000)).received, 10_000, 'served')

  first.child.kill('SIGKILL')
  await first.exited
  t.notMatch(await listening(server), /:15006\b/, 'killed: its listeners in the pod are gone')
  const second = spawnIn(t, node, zArgs)
  await second.waitFor(/ztunnel ready/, 'stderr', SIDECAR_READY_MS)
  t.match(second.stderr.join('\n'), /"pods":\["client","server"\]/, 'the snapshot named both pods')
  const again = await runClient(t, client, server.ip, appPort, 10_000)
  t.equal(again.receivedSha256, again.sentSha256, 'served again after the restart')

  // The agent lets the server pod go (its file without it, SIGHUP): the ztunnel closes its listeners there.
  write([client])
  agent.child.kill('SIGHUP')
  for (let i = 0; i < 100 && /:1500[168]\b/.test(await listening(server)); i++) await new Promise((r) => setTimeout(r, 100))
  t.notMatch(await listening(server), /:1500[168]\b/, "the server pod's listeners closed")
  t.match(await listening(client), /:15001\b/, 'the client pod is still served')
  t.match(second.stderr.join('\n'), /pod delete request, shutting down proxy/)
})

t.test('a pod whose namespace cannot be entered is refused by name: the ztunnel exits 2', opts, async (t) => {
  const { node } = await ambientPair(t)
  const z = spawnIn(t, node, ['node', cli, 'ztunnel', '--pod', 'web=/etc/hostname', '--admin-port', '0', '--log-level', 'silent'])
  t.equal(await z.exited, 2, 'exit 2')
  t.match(
    z.stderr.join('\n'),
    /^error: pod web: cannot enter its network namespace \(setns EINVAL: the descriptor it was given is no network namespace\)$/m,
  )
})

t.test('a pod removed stops being served: its listeners close', opts, async (t) => {
  const { client, server, node } = await ambientPair(t)
  const z = await startZtunnel(t, node, [client, server], ['--admin-port', '15000'])
  const before = await execIn(server.ns, ['ss', '-Htln'])
  t.match(before.stdout, /:15006\b/)
  z.child.kill('SIGTERM')
  t.equal(await z.exited, 0, 'exits 0 on SIGTERM')
  const after = await execIn(server.ns, ['ss', '-Htln'])
  t.notMatch(after.stdout, /:1500[168]\b/, 'no listener left in the pod')
})

t.test('a ztunnel started again at once listens, while the last one left connections in TIME_WAIT on its ports', opts, async (t) => {
  const { client, server, node } = await ambientPair(t)
  const first = await startZtunnel(t, node, [client, server])
  // The app closes first, so the ztunnel's end on 15001 (in the client pod) passes the FIN on first and stays
  // in TIME_WAIT once the client closes too.
  const app = spawnIn(t, server.ns, [
    'node',
    '-e',
    `require('node:net').createServer((s) => s.end('bye')).listen(${appPort}, () => console.log('listening'))`,
  ])
  await app.waitFor(/listening/)
  const conn = spawnIn(
    t,
    client.ns,
    [
      'node',
      '-e',
      `const s = require('node:net').connect(${appPort}, '${server.ip}'); s.on('data', () => {}); s.on('close', () => console.log('closed'))`,
    ],
    { uid: 1000, gid: 1000 },
  )
  await conn.waitFor(/closed/)
  let timeWait = ''
  for (let i = 0; i < 50 && !/:15001\b/.test(timeWait); i++) {
    if (i) await new Promise((r) => setTimeout(r, 100))
    timeWait = (await execIn(client.ns, ['ss', '-Htan', 'state', 'time-wait'])).stdout
  }
  t.match(timeWait, /:15001\b/, 'the ztunnel left its end on 15001 in TIME_WAIT')
  first.child.kill('SIGTERM')
  await first.exited
  const again = await startZtunnel(t, node, [client, server])
  t.ok(
    again.stderr.some((l) => l.includes('ztunnel ready')),
    'the new ztunnel is ready: its listeners took the ports again (SO_REUSEADDR)',
  )
})
