// Peers that misbehave, through both sidecars: an upstream killed mid-transfer, a peer that never reads, a
// client killed mid-download, a slow reader. Each asserts what the other side sees, and what the sidecars
// hold (memory, descriptors) while and after it happens.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { adminStats, eventually, repoRoot, runClient, spawnIn, type Pod, type SidecarProc } from '../helpers/pods.js'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { event, faultClient, faultServer, fdCount, fdsBackTo, mesh, pidOf, rssKiB, running, until } from '../helpers/faults.js'

const MB = 1_000_000
interface Download {
  received: number
  sha256?: string
  error: string | null
}

/** The fault server's stream cut by kill -9 while the raw client downloads; what each side saw. */
async function killUpstreamMidTransfer(t: Test, pauseMs = 0) {
  const { client, server, outbound, inbound } = await mesh(t)
  const app = await faultServer(t, server, 9080, 'source', 4000 * MB)
  // The greeting stays unread in the server's socket, so its death is a reset (a killed process with
  // nothing unread would close with a FIN after its last bytes, a clean end at the TCP level).
  const dl = spawnIn(
    t,
    client.ns,
    ['/usr/bin/python3', join(repoRoot, 'test/helpers/apps/raw-download.py'), server.ip, '9080', '1024', String(4 * MB), String(pauseMs)],
    { uid: 1000, gid: 1000 },
  )
  await event(dl, 'progress')
  app.child.kill('SIGKILL')
  const r = await event<Download>(dl, 'result')
  const lines = async (s: SidecarProc) => (await eventually(() => s.accessLines().length > 0 && s.accessLines()))[0]!
  return { client, server, outbound, inbound, r, outLine: await lines(outbound), inLine: await lines(inbound) }
}

t.test(
  "upstream killed (kill -9) mid-transfer: the client's stream ends short, both sidecars stay up and serve the next connection",
  rootOnly(),
  async (t) => {
    const { client, server, outbound, inbound, r } = await killUpstreamMidTransfer(t)
    t.ok(
      r.received > 0 && r.received < 4000 * MB,
      `the client's stream ended after ${(r.received / MB).toFixed(1)} MB of 4000 (${r.error ?? 'EOF'})`,
    )
    t.ok(running(outbound) && running(inbound), 'both sidecars are still up')
    await faultServer(t, server, 9081, 'echo')
    const next = await runClient(t, client, server.ip, 9081, 1 * MB)
    t.equal(next.error, null, 'a new connection through both sidecars: no error')
    t.equal(next.receivedSha256, next.sentSha256, 'a new connection through both sidecars echoes 1 MB intact')
  },
)

// When the reset of a killed upstream reaches a sidecar while bytes are still queued on its upstream socket
// (always, with a slow reader), libuv reports EOF (uv__stream_io: POLLHUP after a partial read) instead of
// ECONNRESET; the same client reading directly from the same server gets ECONNRESET. The relay reads SO_ERROR
// at 'end' (src/proxy/engines/node-relay.ts), so the reset is passed on; before that the client got a clean end.
t.test('upstream killed (kill -9) mid-transfer: the reset reaches the client, never a clean end', rootOnly(), async (t) => {
  const { r, outLine, inLine } = await killUpstreamMidTransfer(t, 2)
  t.match(inLine, /upstream_econnreset/, 'the inbound sidecar logs the upstream reset')
  t.match(outLine, /upstream_econnreset/, 'the outbound sidecar logs the reset passed on to it')
  t.equal(r.error, 'ECONNRESET', `the client sees ECONNRESET after ${r.received} bytes, not EOF`)
})

t.test(
  'a peer that never reads while the client sends 200 MB: the buffer limit holds, RSS stays bounded, nothing is lost',
  rootOnly(),
  async (t) => {
    const { client, server, outbound, inbound } = await mesh(t)
    const app = await faultServer(t, server, 9080, 'stall')
    const pids = { outbound: pidOf(outbound), inbound: pidOf(inbound) }
    const before = { outbound: rssKiB(pids.outbound), inbound: rssKiB(pids.inbound) }
    const peak = { ...before }
    const up = faultClient(t, client, server.ip, 9080, 'upload', [200 * MB])
    const written = () => {
      const last = up.stdout.filter((l) => l.includes('"progress"')).pop()
      return last ? (JSON.parse(last) as { written: number }).written : 0
    }
    // stalled: the client could hand nothing more to the path for a whole second (five reports)
    let seen = -1
    let steady = 0
    await until(
      'the upload stalls',
      async () => {
        for (const k of ['outbound', 'inbound'] as const) peak[k] = Math.max(peak[k], rssKiB(pids[k]))
        const w = written()
        steady = w > 0 && w === seen ? steady + 1 : 0
        seen = w
        return steady >= 5
      },
      30_000,
      written,
    )
    for (let i = 0; i < 10; i++) {
      for (const k of ['outbound', 'inbound'] as const) peak[k] = Math.max(peak[k], rssKiB(pids[k]))
      await sleep(100)
    }
    t.ok(seen < 100 * MB, `the client could write only ${(seen / MB).toFixed(1)} MB of 200 MB before the path pushed back`)
    for (const k of ['outbound', 'inbound'] as const) {
      const grew = (peak[k] - before[k]) / 1024
      t.ok(
        grew < 64,
        `${k} sidecar RSS grew by ${grew.toFixed(1)} MiB at most (${(before[k] / 1024).toFixed(1)} -> peak ${(peak[k] / 1024).toFixed(1)} MiB), not by what the peer left unread`,
      )
    }
    app.child.kill('SIGUSR1')
    const r = await event<{ written: number; sha256: string; error: string | null }>(up, 'result', 60_000)
    const got = await event<{ bytes: number; sha256: string }>(app, 'conn', 60_000)
    t.equal(r.error, null, 'the client finished without an error once the peer read')
    t.equal(got.bytes, 200 * MB, 'the peer got all 200 MB')
    t.equal(got.sha256, r.sha256, 'the same bytes (sha256)')
  },
)

t.test('client killed (kill -9) mid-download: the upstream connection is closed and the descriptors return', rootOnly(), async (t) => {
  const { client, server, outbound, inbound } = await mesh(t)
  const app = await faultServer(t, server, 9080, 'source', 4000 * MB)
  const pids = { outbound: pidOf(outbound), inbound: pidOf(inbound) }
  const baseline = { outbound: fdCount(pids.outbound), inbound: fdCount(pids.inbound) }
  const dl = faultClient(t, client, server.ip, 9080, 'download', [0, 4 * MB, 0])
  await event(dl, 'progress')
  t.ok(
    fdCount(pids.outbound) > baseline.outbound && fdCount(pids.inbound) > baseline.inbound,
    'the transfer holds descriptors in both sidecars',
  )
  dl.child.kill('SIGKILL')
  const closed = await event<{ sent: number }>(app, 'closed')
  t.ok(
    closed.sent < 4000 * MB,
    `the server's connection was closed after ${(closed.sent / MB).toFixed(0)} MB: the sidecars did not keep pulling from it`,
  )
  for (const k of ['outbound', 'inbound'] as const) {
    const n = await fdsBackTo(pids[k], baseline[k])
    t.ok(n <= baseline[k] + 1, `${k} sidecar back to ${n} descriptors (${baseline[k]} before)`)
  }
  const line = await eventually(() => outbound.accessLines().find((l) => / downstream_/.test(l)))
  t.match(line, /downstream_econnreset|downstream_epipe/, "the outbound sidecar logs the client's reset")
})

t.test('a slow reader gets every byte intact (sha256)', rootOnly(), async (t) => {
  const { client, server } = await mesh(t)
  const app = await faultServer(t, server, 9080, 'source', 8 * MB)
  const dl = faultClient(t, client, server.ip, 9080, 'download', [0, 0, 5]) // 5 ms pause after every chunk
  const r = await event<Download>(dl, 'result', 90_000)
  const sent = await event<{ sent: number; sha256: string }>(app, 'done', 90_000)
  t.equal(r.error, null, 'a clean end')
  t.equal(r.received, 8 * MB, 'all 8 MB arrived')
  t.equal(r.sha256, sent.sha256, 'the bytes the server sent (sha256)')
})

/** Established TCP connections in the pod with the given local port. */
async function established(pod: Pod, port: number): Promise<number> {
  const r = await execIn(pod.ns, ['ss', '-Htn', 'state', 'established', `( sport = :${port} )`])
  return r.stdout.split('\n').filter((l) => l.trim()).length
}

// A reset from the client while the sidecars have stopped reading it (the peer does not read, so every hop
// paused at its buffer limit): nothing is read from the paused socket, yet its reset must reach the other
// side, and the connection must close, not wait for the idle timeout (1 h).
t.test(
  "a client's reset while its direction is paused reaches the upstream, and the sidecars close the connection",
  rootOnly(),
  async (t) => {
    const { client, server, outbound, inbound } = await mesh(t)
    await faultServer(t, server, 9080, 'stall')
    const push = faultClient(t, client, server.ip, 9080, 'push-reset', [10])
    await until('the server holds the 10 connections', async () => (await established(server, 9080)) === 10)
    const reset = await event<{ connections: number; written: number }>(push, 'reset', 60_000)
    t.comment(`10 clients wrote ${(reset.written / MB).toFixed(1)} MB before the path stopped taking bytes, then reset`)
    const paused = async (pod: Pod) =>
      Object.entries(await adminStats(pod))
        .filter(([name]) => name.endsWith('.downstream_flow_control_paused_reading_total'))
        .reduce((n, [, v]) => n + v, 0)
    await until('the upstream sees its 10 connections reset', async () => (await established(server, 9080)) === 0, 30_000)
    t.equal(await established(server, 9080), 0, 'the upstream holds no established connection')
    for (const [pod, port] of [
      [client, 15001],
      [server, 15006],
    ] as const) {
      await until(
        `downstream_cx_active on ${port} back to 0`,
        async () => (await adminStats(pod))[`listener.[__]_${port}.downstream_cx_active`] === 0,
      )
      t.equal((await adminStats(pod))[`listener.[__]_${port}.downstream_cx_active`], 0, `${port}: downstream_cx_active is 0`)
    }
    t.ok((await paused(client)) > 0, 'the outbound sidecar had paused reading the clients')
    const lines = await eventually(() => outbound.accessLines().length >= 10 && outbound.accessLines())
    t.equal(lines.filter((l) => /downstream_econnreset/.test(l)).length, 10, "the outbound sidecar logs the clients' resets")
    t.ok(inbound.accessLines().length >= 10, 'the inbound sidecar logged its 10 connections')
  },
)
