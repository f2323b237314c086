// The sidecar between two pods with the seed's capture rules, both sidecars running as uid 1337.
import t from 'tap'
import { rootOnly } from '../helpers/root.js'
import { join } from 'node:path'
import { execIn } from '../../src/sys/netns.js'
import {
  adminStats,
  eventually,
  podPair,
  repoRoot,
  runClient,
  spawnIn,
  startServerApp,
  startSidecar,
  waitForStat,
} from '../helpers/pods.js'

const MB = 1_000_000

t.test(
  '50 MB each way through both sidecars arrive intact, original destinations recovered, server sees 127.0.0.6',
  rootOnly(),
  async (t) => {
    const { client, server } = await podPair(t)
    const app = await startServerApp(t, server, 9080)
    const outbound = await startSidecar(t, client)
    const inbound = await startSidecar(t, server)

    const r = await runClient(t, client, server.ip, 9080, 50 * MB)
    t.equal(r.error, null, 'client saw no error')
    t.equal(r.received, 50 * MB, 'client received 50 MB back')
    t.equal(r.receivedSha256, r.sentSha256, 'bytes back equal bytes sent (sha256)')

    const conn = JSON.parse(await app.waitFor(/"event":"conn"/))
    t.equal(conn.bytes, 50 * MB, 'server app received 50 MB')
    t.equal(conn.sha256, r.sentSha256, 'server app got the same bytes (sha256)')
    t.equal(conn.peer.address.replace('::ffff:', ''), '127.0.0.6', 'server app sees its peer as 127.0.0.6')

    const out = await eventually(() => outbound.accessLines().find((l) => l.includes('PassthroughCluster')))
    t.match(
      out,
      new RegExp(
        `"- - -" 0 - - - "-" ${50 * MB} ${50 * MB} \\d+ - "-" "-" "-" "-" "198\\.18\\.0\\.2:9080" PassthroughCluster 198\\.18\\.0\\.1:\\d+ 198\\.18\\.0\\.2:9080 198\\.18\\.0\\.1:${r.local.port} - -`,
      ),
      'outbound access log: original destination 198.18.0.2:9080 via PassthroughCluster',
    )
    const inb = await eventually(() => inbound.accessLines().find((l) => l.includes('InboundPassthroughClusterIpv4')))
    t.match(
      inb,
      new RegExp(`"198\\.18\\.0\\.2:9080" InboundPassthroughClusterIpv4 127\\.0\\.0\\.6:\\d+ 198\\.18\\.0\\.2:9080 198\\.18\\.0\\.1:\\d+`),
      'inbound access log: original destination recovered, upstream from 127.0.0.6',
    )
  },
)

t.test('IPv6: both sidecars recover [2001:2::2]:9080 and the server sees ::6', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const app = await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client)
  const inbound = await startSidecar(t, server)
  const r = await runClient(t, client, server.ip6, 9080, 1 * MB)
  t.equal(r.error, null)
  t.equal(r.receivedSha256, r.sentSha256, '1 MB echoed intact')
  const conn = JSON.parse(await app.waitFor(/"event":"conn"/))
  t.equal(conn.peer.address, '::6', 'server app sees its peer as ::6')
  const out = await eventually(() => outbound.accessLines().find((l) => l.includes('PassthroughCluster')))
  t.match(out, /"\[2001:2::2\]:9080" PassthroughCluster \[2001:2::1\]:\d+ \[2001:2::2\]:9080 \[2001:2::1\]:\d+ - -/)
  const inb = await eventually(() => inbound.accessLines().find((l) => l.includes('InboundPassthroughClusterIpv6')))
  t.match(inb, /"\[2001:2::2\]:9080" InboundPassthroughClusterIpv6 \[::6\]:\d+ \[2001:2::2\]:9080 /)
})

t.test('an upstream reset mid-stream resets the client: a cut-short stream is never a clean end', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const app = await startServerApp(t, server, 9080, 'reset')
  await startSidecar(t, client)
  await startSidecar(t, server)
  const r = await runClient(t, client, server.ip, 9080, 4 * MB)
  await app.waitFor(/"event":"reset"/)
  t.equal(r.error, 'ECONNRESET', 'the client sees ECONNRESET, not EOF')
})

t.test('half-close: the client shuts its write side and still reads the reply', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9081, 'late-reply')
  await startSidecar(t, client)
  await startSidecar(t, server)
  const r = await runClient(t, client, server.ip, 9081, 5)
  t.equal(r.error, null)
  t.equal(r.firstReply, 'reply after FIN (5 bytes seen)', 'reply sent after the FIN reached the client')
})

t.test('loop guard: connections to the proxy itself go to BlackHoleCluster', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const outbound = await startSidecar(t, client)
  const inbound = await startSidecar(t, server)
  for (const [host, label] of [
    ['127.0.0.1', 'loopback'],
    [client.ip, 'own pod IP'],
  ] as const) {
    const r = await runClient(t, client, host, 15001, 100)
    t.equal(r.received, 0, `${label}:15001 is closed without a reply`)
  }
  const r = await runClient(t, server, server.ip, 15006, 100)
  t.equal(r.received, 0, "a connection to the pod's own IP:15006 is closed without a reply")
  const lines = await eventually(() => {
    const l = outbound.accessLines().filter((x) => x.includes('BlackHoleCluster'))
    return l.length >= 2 && l
  })
  t.match(lines[0], /0 UH - destination_is_proxy_listener .* BlackHoleCluster - 127\.0\.0\.1:15001 /)
  t.match(lines[1], /0 UH - destination_is_proxy_listener .* BlackHoleCluster - 198\.18\.0\.1:15001 /)
  const inLine = await eventually(() => inbound.accessLines().find((x) => x.includes('BlackHoleCluster')))
  t.match(
    inLine,
    /UH - destination_is_proxy_listener .* BlackHoleCluster - 198\.18\.0\.2:15006 /,
    'inbound listener blackholes its own port',
  )
})

t.test('loop guard: a proxy whose uid the rules do not exempt refuses the loop on the second hop', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const app = await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client, ['--uid', '2000', '--gid', '2000'])
  const r = await runClient(t, client, server.ip, 9080, 1000)
  t.equal(r.received, 0, 'the client gets no reply')
  const error = await outbound.waitFor(/traffic loop/, 'stderr')
  t.match(error, /"level":50/, 'logged at error level')
  t.match(error, /uid 2000/, 'the error names the uid that is not exempt')
  t.match(error, /--uid 1337|-u\/--proxy-uid/, 'the error says how to fix it')
  // Bounded: once every connection the outbound listener accepted is closed, it accepted exactly three (the
  // first looped hop is proxied as a suspect, its own upstream coming back is the loop: loop-guard.ts rule 6).
  await waitForStat(client, 'listener.[__]_15001.downstream_cx_active', (n) => n === 0)
  t.equal(
    (await adminStats(client))['listener.[__]_15001.downstream_cx_total'],
    3,
    "the listener accepted three connections: the app's and two looped hops (the loop is bounded)",
  )
  t.equal((await adminStats(client))['sidecar.upstream_loop'], 1, 'the loop is counted once')
  const lines = await eventually(() => (outbound.accessLines().length >= 3 ? outbound.accessLines() : undefined))
  t.equal(lines.length, 3, 'exactly three access-log lines')
  t.equal(
    lines.filter((l) => /UF - upstream_loop .* PassthroughCluster/.test(l)).length,
    2,
    "the app's connection and the suspect hop are logged UF upstream_loop",
  )
  t.ok(
    lines.some((l) => /NR - upstream_loop .* BlackHoleCluster/.test(l)),
    'the looped hop is refused',
  )
  t.notOk(
    app.stdout.some((l) => l.includes('"conn"')),
    'the server app never got a connection',
  )
})

t.test('loop guard: an app connection sharing a source port with an open upstream socket is not a loop', rootOnly(), async (t) => {
  // Linux gives the same local port to connect()ed sockets with different destinations, so with many
  // upstream sockets open, new app connections often reuse one of their ports; only the destination differs.
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  await startServerApp(t, server, 9081)
  const outbound = await startSidecar(t, client)
  await startSidecar(t, server)
  const app = spawnIn(
    t,
    client.ns,
    ['node', join(repoRoot, 'test/helpers/apps/port-share.mjs'), server.ip, '9080', '9081', '1500', '300'],
    { uid: 1000, gid: 1000 },
  )
  const r = JSON.parse(await app.waitFor(/"held"/, 'stdout', 90_000)) as {
    held: number
    short: number
    errors: string[]
    shortPorts: number[]
    /** short connections tried (300, or more until one shared a port) */
    tried: number
    /** the sidecar's upstream sockets the app saw in /proc/net/tcp */
    upstream: number
  }
  const ss = await execIn(client.ns, ['ss', '-Htne', 'state', 'established', 'dport', '= :9080'])
  const upstreamPorts = new Set(
    ss.stdout
      .split('\n')
      .filter((l) => / uid:1337 /.test(l))
      .map((l) => Number(/198\.18\.0\.1:(\d+)/.exec(l)?.[1])),
  )
  const shared = r.shortPorts.filter((p) => upstreamPorts.has(p))
  t.equal(r.held, 1500, '1500 connections held open through both sidecars')
  t.ok(
    shared.length > 0,
    `the kernel gave app connections ports of open upstream sockets (${shared.length} of ${r.short}; ${upstreamPorts.size} upstream sockets, ${r.upstream} seen by the app), so the case was exercised`,
  )
  t.same(r.errors, [], 'no app connection was refused')
  t.ok(r.tried >= 300, `${r.tried} short connections tried`)
  t.equal(r.short, r.tried, 'every short connection got its echo')
  t.notOk(
    outbound.stderr.some((l) => l.includes('traffic loop')),
    'no traffic loop was reported',
  )
})

t.test('connection refused upstream: the client is closed and the inbound sidecar logs UF', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startSidecar(t, client)
  const inbound = await startSidecar(t, server)
  const r = await runClient(t, client, server.ip, 9999, 100)
  t.equal(r.received, 0, 'client got nothing back')
  t.ok(r.error === null || r.error === 'ECONNRESET', `client saw the connection close (${r.error ?? 'EOF'})`)
  const line = await eventually(() => inbound.accessLines().find((l) => l.includes('9999')))
  t.match(
    line,
    /"- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 \d+ - "-" "-" "-" "-" "198\.18\.0\.2:9999" InboundPassthroughClusterIpv4 - 198\.18\.0\.2:9999 198\.18\.0\.1:\d+ - -/,
  )
})

t.test('REGISTRY_ONLY: known destinations pass, unknown ones go to BlackHoleCluster', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  const known = await startServerApp(t, server, 9080)
  const unknown = await startServerApp(t, server, 9081)
  const outbound = await startSidecar(t, client, ['--outbound-traffic-policy', 'REGISTRY_ONLY', '--registry', `reviews=${server.ip}:9080`])
  await startSidecar(t, server)
  const ok = await runClient(t, client, server.ip, 9080, 1000)
  t.equal(ok.received, 1000, 'registered destination answers')
  const blocked = await runClient(t, client, server.ip, 9081, 1000)
  t.equal(blocked.received, 0, 'unregistered destination is cut off')
  await known.waitFor(/"conn"/)
  t.notOk(
    unknown.stdout.some((l) => l.includes('"conn"')),
    'the unregistered server never got a connection',
  )
  const line = await eventually(() => outbound.accessLines().find((l) => l.includes('BlackHoleCluster')))
  t.match(line, /UH - registry_only .* BlackHoleCluster - 198\.18\.0\.2:9081 /)
})

t.test('idle timeout closes a silent connection', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client, ['--idle-timeout', '300ms'])
  await startSidecar(t, server)
  // one 10-byte write, then 4 s of silence before the client would close
  const r = await runClient(t, client, server.ip, 9080, 10, 4000)
  t.equal(r.received, 10, 'the echo of the one write arrives')
  t.ok(r.ms < 4000, `the connection ended after ${r.ms} ms, before the client's own close at 4000 ms`)
  const line = await eventually(() => outbound.accessLines().find((l) => l.includes('idle_timeout')))
  t.match(line, /0 - - idle_timeout "-" 10 10 /)
})

t.test('connection limit: connections over --max-connections are closed at once', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  await startSidecar(t, client, ['--max-connections', '1'])
  await startSidecar(t, server)
  // holds the one slot for 6 s: long enough for the second client's process to start on a loaded machine
  const first = runClient(t, client, server.ip, 9080, 10, 6000)
  await waitForStat(client, 'listener.[__]_15001.downstream_cx_active', (n) => n === 1)
  const second = await runClient(t, client, server.ip, 9080, 10)
  t.equal(second.received, 0, 'the second connection is closed without a reply')
  const r = await first
  t.equal(r.received, 10, 'the first one is served')
})

t.test('SIGTERM during a transfer: nothing lost, new connections refused, exit 0', rootOnly(), async (t) => {
  const { client, server } = await podPair(t)
  await startServerApp(t, server, 9080)
  const outbound = await startSidecar(t, client, ['--drain-duration', '5s', '--exit-on-zero-active'])
  await startSidecar(t, server)
  const transfer = runClient(t, client, server.ip, 9080, 8 * MB, 2000)
  await waitForStat(client, 'listener.[__]_15001.downstream_cx_active', (n) => n === 1)
  outbound.child.kill('SIGTERM')
  await outbound.waitFor(/draining/, 'stderr')
  const late = await runClient(t, client, server.ip, 9080, 100)
  t.equal(late.error, 'ECONNREFUSED', 'a new connection during the drain is refused')
  const r = await transfer
  t.equal(r.error, null)
  t.equal(r.received, 8 * MB, 'the in-flight transfer finished')
  t.equal(r.receivedSha256, r.sentSha256, 'and lost nothing (sha256)')
  t.equal(await outbound.exited, 0, 'the sidecar exits 0 after the drain')
})
