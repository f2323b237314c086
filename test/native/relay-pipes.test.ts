// The relay engine's pipes under its limit (relayStart's maxPipes, which the sidecar sets from its descriptor
// budget, src/proxy/fd-budget.ts): never more pipes than that; directions beyond it move their bytes by
// read/write, whole, and take a pipe again once their buffer is empty.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { relayStart, relayStats, relayStop, type RelayEvent } from '../../src/native/relay.js'
import { drain, relayed, sha, start, type Relayed } from '../helpers/relay-harness.js'

const MiB = 1024 * 1024

/**
 * Resolves once the relay has paused reading this connection more than `after` times; fails after 30 s (a
 * second at most alone; 10 s ran out once with three test files at once on 2 loaded cores).
 */
async function pausedMore(r: Relayed, after: number): Promise<number> {
  return flowMore(r, 'paused', after)
}

/** Resolves once the relay has paused (or resumed) reading this connection more than `after` times; fails after 30 s. */
async function flowMore(r: Relayed, kind: 'paused' | 'resumed', after: number): Promise<number> {
  for (const end = Date.now() + 30_000; flowCount(r, kind) <= after; await setTimeout(20)) {
    if (Date.now() > end) throw new Error(`connection ${r.id}: reading ${kind} ${flowCount(r, kind)} times, not more than ${after}`)
  }
  return flowCount(r, kind)
}

function flowCount(r: Relayed, kind: 'paused' | 'resumed'): number {
  return r.events.filter((e): e is Extract<RelayEvent, { type: 'flow' }> => e.type === 'flow').reduce((n, e) => n + e[kind], 0)
}

function restart(t: Test, maxPipes: number): void {
  relayStop()
  start({ bufferLimitBytes: 64 * 1024, maxPipes })
  t.teardown(() => relayStop())
}

t.test('bad maxPipes is a TypeError naming it', async (t) => {
  const opts = { bufferLimitBytes: 1, connectTimeoutMs: 1, idleTimeoutMs: 0 }
  t.throws(() => relayStart(() => {}, { ...opts, maxPipes: -1 }), { name: 'TypeError', message: /^maxPipes must be an integer/ })
  t.throws(() => relayStart(() => {}, { ...opts, maxPipes: 1.5 }), { name: 'TypeError', message: /^maxPipes must be an integer/ })
})

t.test('six stalled directions and maxPipes 2: two hold a pipe, the rest read/write, every byte arrives', async (t) => {
  restart(t, 2)
  t.equal(relayStats().pipesMax, 2, 'the limit is the one given')
  const open = await Promise.all(Array.from({ length: 6 }, () => relayed(t)))
  const data = open.map(() => randomBytes(8 * MiB))
  const ups = await Promise.all(open.map((r) => r.upstream))
  ups.forEach((up) => up.pause())
  open.forEach((r, i) => r.client.end(data[i]!))
  await Promise.all(open.map((r) => pausedMore(r, 0)))
  const s = relayStats()
  t.equal(s.pipesInUse + s.pipesPooled, 2, `six directions paused, two pipes in all (${s.pipesInUse} in use)`)
  const got = await Promise.all(
    ups.map((up) => {
      const d = drain(up)
      up.resume()
      return d
    }),
  )
  got.forEach((g, i) => t.same(g, { bytes: 8 * MiB, sha: sha(data[i]!), error: null }, `connection ${i + 1}: 8 MiB whole`))
  ups.forEach((up) => up.end())
  for (const r of open) t.equal((await r.closed).close, 'clean', `connection ${r.id} closed cleanly`)
})

t.test('a direction that went by read/write for want of a pipe takes one again once its buffer is empty', async (t) => {
  restart(t, 1)
  const [a, b] = [await relayed(t), await relayed(t)]
  const [upA, upB] = [await a.upstream, await b.upstream]
  upA.pause()
  upB.pause()
  a.client.end(randomBytes(8 * MiB))
  await pausedMore(a, 0)
  // The client writes until the relay has stalled on the second upstream anew (below), not a fixed amount: the
  // kernel grows socket buffers while the upstream reads (tcp_rmem's maximum is 32 MiB here), and a run once
  // took all of a 32 MiB stream into them, so the relay's buffer never filled again.
  const sentB: Buffer[] = []
  let writing = true
  const writer = (async () => {
    for (let total = 0; writing && total < 512 * MiB; total += MiB) {
      const chunk = randomBytes(MiB)
      sentB.push(chunk)
      if (!b.client.write(chunk)) await once(b.client, 'drain')
    }
    b.client.end()
  })()
  await pausedMore(b, 0)
  t.equal(relayStats().pipesInUse, 1, 'the one pipe there may be is in use: the second connection reads into a buffer')
  const atA = drain(upA)
  upA.resume()
  await atA
  upA.end()
  await a.closed
  // The second upstream reads until the relay resumes (its buffer emptied), and stops again: the direction
  // stalls anew. Not a fixed amount: the relay's upstream socket is writable again only once its send queue
  // is down to two thirds of its buffer, which the kernel grows to 4 MiB here (a run that read 1 MiB saw no
  // resume).
  const chunks: Buffer[] = []
  const ended = new Promise((resolve) => upB.once('end', resolve))
  const pausedBefore = await pausedMore(b, 0)
  const resumedBefore = flowCount(b, 'resumed')
  let holding = true
  upB.on('data', (c: Buffer) => {
    chunks.push(c)
    if (holding && flowCount(b, 'resumed') > resumedBefore) upB.pause()
  })
  upB.resume()
  await flowMore(b, 'resumed', resumedBefore)
  // Stalled again: paused since, with the bytes in the one pipe (a pause in the resume's own round may come
  // before or after it, so the count alone does not say).
  for (const end = Date.now() + 30_000; Date.now() < end; await setTimeout(20)) {
    if (flowCount(b, 'paused') > pausedBefore && relayStats().pipesInUse === 1) break
  }
  t.ok(flowCount(b, 'paused') > pausedBefore, 'reading paused again')
  t.equal(relayStats().pipesInUse, 1, 'stalled again, the second direction holds the pipe now')
  writing = false
  holding = false
  upB.resume()
  await Promise.all([ended, writer])
  const dataB = Buffer.concat(sentB)
  t.equal(sha(Buffer.concat(chunks)), sha(dataB), `all ${dataB.length / MiB} MiB arrived whole (sha256)`)
  upB.end()
  t.equal((await b.closed).close, 'clean', 'closed cleanly')
})
