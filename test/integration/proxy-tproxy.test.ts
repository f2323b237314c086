// The sidecar in TPROXY mode: the server pod has the generator's -m TPROXY rules and routes and its
// sidecar runs as uid 0 / gid 1337 (as Istio's injector runs it); the client pod is in REDIRECT mode.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { execIn } from '../../src/sys/netns.js'
import { eventually, podPair, repoRoot, runClient, spawnIn, startServerApp, startSidecar, type Pod } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { engineFlags } from '../helpers/engine.js'

const MB = 1_000_000
const cli = join(repoRoot, 'dist/cli.js')
const common = ['-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-b', '*', '-d', '15090,15021,15020', '--dual-stack']

function iptables(pod: Pod, mode: 'REDIRECT' | 'TPROXY', cleanup = false): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'node',
      [cli, 'iptables', ...common, '-m', mode, '--network-namespace', pod.ns, ...(cleanup ? ['--cleanup-only'] : [])],
      (err, _out, stderr) => (err ? reject(new Error(stderr)) : resolve()),
    )
  })
}

async function tproxyPair(t: Test) {
  const { client, server } = await podPair(t, { rules: false })
  for (const p of [client, server]) await execIn(p.ns, ['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo'])
  await iptables(client, 'REDIRECT')
  await iptables(server, 'TPROXY')
  return { client, server }
}

const tproxyFlags = [
  '--interception-mode',
  'TPROXY',
  '--admin-port',
  '0',
  '--health-port',
  '0',
  '--prometheus-port',
  '0',
  '--merged-metrics-port',
  '0',
]

/** Waits until a connect to the port is pending in the pod (a socket in SYN-SENT). */
async function synSent(pod: Pod, port: number): Promise<void> {
  const end = Date.now() + 10_000
  while ((await execIn(pod.ns, ['ss', '-Htn', 'state', 'syn-sent', 'dport', `= :${port}`])).stdout.trim() === '') {
    if (Date.now() > end) throw new Error(`no connect to port ${port} pending in ${pod.ns} after 10 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test("TPROXY: 50 MB each way arrive intact, and the server app sees the client pod's own address", rootOnly(), async (t) => {
  const { client, server } = await tproxyPair(t)
  const app = await startServerApp(t, server, 9080)
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server, tproxyFlags)
  t.match(
    inbound.stderr.find((l) => l.includes('sidecar ready')),
    /"interceptionMode":"TPROXY","uid":0,"gid":1337/,
    'runs as uid 0, gid 1337',
  )

  const r = await runClient(t, client, server.ip, 9080, 50 * MB)
  t.equal(r.error, null, 'client saw no error')
  t.equal(r.received, 50 * MB, 'client received 50 MB back')
  t.equal(r.receivedSha256, r.sentSha256, 'bytes back equal bytes sent (sha256)')
  const conn = JSON.parse(await app.waitFor(/"event":"conn"/))
  t.equal(conn.bytes, 50 * MB, 'server app received 50 MB')
  t.equal(conn.sha256, r.sentSha256, 'server app got the same bytes (sha256)')
  t.equal(conn.peer.address.replace('::ffff:', ''), client.ip, 'server app sees the client pod (198.18.0.1), not 127.0.0.6')
  const inb = await eventually(() => inbound.accessLines().find((l) => l.includes('InboundPassthroughClusterIpv4')))
  t.match(
    inb,
    new RegExp(
      `${50 * MB} ${50 * MB} \\d+ - "-" "-" "-" "-" "198\\.18\\.0\\.2:9080" InboundPassthroughClusterIpv4 198\\.18\\.0\\.1:${conn.peer.port} 198\\.18\\.0\\.2:9080 198\\.18\\.0\\.1:\\d+ - -`,
    ),
    "access log: destination from the local address, upstream_local_address is the client's address",
  )
})

t.test('TPROXY IPv6: 50 MB each way intact, the server app sees 2001:2::1', rootOnly(), async (t) => {
  const { client, server } = await tproxyPair(t)
  const app = await startServerApp(t, server, 9080)
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server, tproxyFlags)
  const r = await runClient(t, client, server.ip6, 9080, 50 * MB)
  t.equal(r.error, null)
  t.equal(r.received, 50 * MB)
  t.equal(r.receivedSha256, r.sentSha256, '50 MB echoed intact')
  const conn = JSON.parse(await app.waitFor(/"event":"conn"/))
  t.equal(conn.peer.address, client.ip6, 'server app sees 2001:2::1, not ::6')
  const inb = await eventually(() => inbound.accessLines().find((l) => l.includes('InboundPassthroughClusterIpv6')))
  t.match(inb, /"\[2001:2::2\]:9080" InboundPassthroughClusterIpv6 \[2001:2::1\]:\d+ \[2001:2::2\]:9080 \[2001:2::1\]:\d+ - -/)
})

t.test('TPROXY: half-close, and nothing loops when the app answers', rootOnly(), async (t) => {
  const { client, server } = await tproxyPair(t)
  const app = await startServerApp(t, server, 9081, 'late-reply')
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server, tproxyFlags)
  for (let i = 0; i < 3; i++) {
    const r = await runClient(t, client, server.ip, 9081, 5)
    t.equal(r.error, null)
    t.equal(r.firstReply, 'reply after FIN (5 bytes seen)', `round ${i + 1}: the reply sent after the FIN reached the client`)
  }
  // every connection closed and logged (a reply taken for a new connection would be a fourth line)
  await eventually(() => inbound.accessLines().length >= 3)
  t.equal(inbound.accessLines().length, 3, 'the inbound sidecar saw exactly the three connections (no reply came back as a new one)')
  t.equal(app.stdout.filter((l) => l.includes('"event":"conn"')).length, 3, 'the app got exactly three connections')
  t.notOk(
    inbound.stderr.some((l) => l.includes('traffic loop')),
    'no traffic loop was reported',
  )
  const mangle = await execIn(server.ns, ['iptables-save', '-c', '-t', 'mangle'])
  t.match(
    mangle.stdout,
    /\[[1-9]\d*:\d+\] -A ISTIO_INBOUND -p tcp -m mark --mark 0x539 -j RETURN/,
    "the sidecar's marked packets skipped the TPROXY rule",
  )
})

t.test('TPROXY: the loop guards hold (own listener port; an unexempted gid)', rootOnly(), async (t) => {
  const { client, server } = await tproxyPair(t)
  await startServerApp(t, client, 9080)
  const inbound = await startSidecar(t, server, [...tproxyFlags, '--gid', '2000'])
  const own = await runClient(t, server, server.ip, 15006, 100)
  t.equal(own.received, 0, "a connection to the pod's own IP:15006 is closed without a reply")
  const blackhole = await eventually(() => inbound.accessLines().find((x) => x.includes('BlackHoleCluster')))
  t.match(blackhole, /UH - destination_is_proxy_listener .* BlackHoleCluster - 198\.18\.0\.2:15006 /)
  // gid 2000 is not exempt: the sidecar's own outbound connection is captured back into 15001.
  const r = await runClient(t, server, client.ip, 9080, 1000)
  t.equal(r.received, 0, 'the app gets no reply')
  const error = await inbound.waitFor(/traffic loop/, 'stderr')
  t.match(error, /gid 2000/, 'the error names the gid that is not exempt')
})

t.test('TPROXY: upstream refused and upstream timeout are logged UF, the event loop never blocked', rootOnly(), async (t) => {
  const { client, server } = await tproxyPair(t)
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server, [...tproxyFlags, '--connect-timeout', '1s'])
  // The client's SYN arrives on eth0 and is diverted; only the sidecar's own SYN (over lo) is dropped.
  await execIn(server.ns, ['iptables', '-A', 'INPUT', '-i', 'lo', '-p', 'tcp', '--dport', '9998', '-j', 'DROP'])
  const refused = await runClient(t, client, server.ip, 9999, 100)
  t.equal(refused.received, 0)
  const line = await eventually(() => inbound.accessLines().find((l) => l.includes(':9999')))
  t.match(
    line,
    /"- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 \d+ - "-" "-" "-" "-" "198\.18\.0\.2:9999" InboundPassthroughClusterIpv4 - 198\.18\.0\.2:9999 198\.18\.0\.1:\d+ - -/,
  )
  const pending = runClient(t, client, server.ip, 9998, 100)
  // accepted by the inbound sidecar, whose connect to the app's port 9998 is now pending (its SYN dropped)
  await synSent(server, 9998)
  await startServerApp(t, server, 9080)
  const fine = await runClient(t, client, server.ip, 9080, 1000)
  const timedOut = await pending
  t.equal(timedOut.received, 0)
  t.equal(fine.received, 1000, 'another connection was served while one upstream connect was pending')
  const slow = await eventually(() => inbound.accessLines().find((l) => l.includes(':9998')), 5000)
  t.match(slow, /"- - -" 0 UF,URX - - "connect_timeout" 0 0 \d+ .* InboundPassthroughClusterIpv4 - 198\.18\.0\.2:9998 /)
})

t.test('TPROXY without CAP_NET_ADMIN/CAP_NET_RAW: a clear error and exit 2', rootOnly(), async (t) => {
  const { server } = await podPair(t, { rules: false })
  const proc = spawnIn(t, server.ns, ['node', cli, 'proxy', ...engineFlags(), ...tproxyFlags], { uid: 1337, gid: 1337 })
  t.equal(await proc.exited, 2)
  const error = proc.stderr.join('\n')
  t.match(error, /error: --interception-mode TPROXY: .*lacks CAP_NET_ADMIN and CAP_NET_RAW/, 'names the missing capabilities')
  t.match(error, /uid 1337/, 'and the uid it ran as')
  const asRoot = spawnIn(t, server.ns, ['node', cli, 'proxy', ...engineFlags(), ...tproxyFlags, '--uid', '1337'])
  t.equal(await asRoot.exited, 2, 'root switching to --uid 1337 loses the capability and says so too')
  t.match(asRoot.stderr.join('\n'), /lacks CAP_NET_ADMIN/)
})
