// Direct connections and loops: one line per burst with a count, counters, and loop advice only where true.
import t from 'tap'
import { pino } from 'pino'
import { Writable } from 'node:stream'
import { BurstLog } from '../../src/proxy/burst-log.js'
import { isLocalAddress, loopAdvice, MisdirectedLog } from '../../src/proxy/misdirected.js'
import { Stats } from '../../src/stats/stats.js'

function memoryLog() {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { log: pino({ level: 'info' }, sink), lines }
}

const remote = { address: '198.18.0.30', port: 40000, family: 4 as const }
const dst = { address: '198.18.0.20', port: 15001, family: 4 as const }

t.test('a burst of direct connections: the first line at once, the rest as one count; all counted', async (t) => {
  const { log, lines } = memoryLog()
  const stats = new Stats()
  const m = new MisdirectedLog(log, stats, () => ({ mode: 'REDIRECT', uid: 1337, gid: 1337 }))
  for (let i = 0; i < 10; i++) m.direct({ listener: 'virtualInbound', remote: { ...remote, port: 40000 + i }, dst })
  await new Promise((r) => setImmediate(r))
  t.equal(lines.length, 1, 'one line while the burst goes on')
  t.match(
    lines[0]!.msg,
    /direct connection to the proxy's listener port 15001 \(198\.18\.0\.20:15001\) from 198\.18\.0\.30:40000, another host/,
  )
  t.notMatch(lines[0]!.msg, /loop|uid|exempt/, 'no loop, no advice')
  m.flush()
  await new Promise((r) => setImmediate(r))
  t.equal(lines.length, 2)
  t.match(lines[1], { count: 9, sources: ['198.18.0.30'] })
  t.equal(stats.counter('sidecar.direct_to_listener').value, 10)
})

t.test('a burst ends after a quiet period: its count is logged then, and the next one is logged in full', async (t) => {
  const seen: string[] = []
  const b = new BurstLog<number>(
    (n) => seen.push(`first ${n}`),
    (s) => seen.push(`+${s.count}`),
    { quietMs: 20 },
  )
  b.record(1, 'a')
  b.record(2, 'a')
  // the burst's end is its timer: wait for the summary it logs
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 10))
  b.record(3, 'b')
  b.flush()
  t.same(seen, ['first 1', '+1', 'first 3'], 'a lone event has no summary')
})

t.test('loop advice: true for the mode and the identity', async (t) => {
  const out = { from: 'outbound' as const, remote }
  t.match(loopAdvice(out, { mode: 'REDIRECT', uid: 2000, gid: 2000 }), /--uid N; istio-iptables' -u defaults to 1337.*-u\/--proxy-uid 2000/)
  const as1337 = loopAdvice(out, { mode: 'REDIRECT', uid: 1337, gid: 1337 })
  t.notMatch(as1337, /--uid 1337/, 'already uid 1337: no advice to run as 1337')
  t.match(as1337, /another -u.*-u\/--proxy-uid 1337/)
  const tproxy = loopAdvice(out, { mode: 'TPROXY', uid: 0, gid: 1337 })
  t.notMatch(tproxy, /--uid/, 'TPROXY: never advise changing the uid (transparent sockets need uid 0)')
  t.match(tproxy, /-g\/--proxy-gid 1337/)
  t.match(loopAdvice({ from: 'inbound', remote }, { mode: 'REDIRECT', uid: 1337, gid: 1337 }), /127\.0\.0\.6/)
  t.notMatch(loopAdvice({ from: 'inbound', remote }, { mode: 'TPROXY', uid: 0, gid: 1337 }), /--uid/)
})

t.test('loops are counted and logged once per burst', async (t) => {
  const { log, lines } = memoryLog()
  const stats = new Stats()
  const m = new MisdirectedLog(log, stats, () => ({ mode: 'TPROXY', uid: 0, gid: 1337 }))
  for (let i = 0; i < 3; i++) m.loop({ listener: 'virtualOutbound', port: 15001, remote, from: 'outbound' })
  m.flush()
  await new Promise((r) => setImmediate(r))
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 50, msg: /traffic loop: .*uid 0, gid 1337, TPROXY mode/ })
  t.notMatch(lines[0]!.msg, /--uid/)
  t.match(lines[1], { count: 2 })
  t.equal(stats.counter('sidecar.upstream_loop').value, 3)
})

t.test('local addresses: loopback and the namespace own', async (t) => {
  t.ok(isLocalAddress('127.0.0.6'))
  t.ok(isLocalAddress('::1'))
  t.notOk(isLocalAddress('198.51.100.77'))
  t.notOk(isLocalAddress(undefined))
})
