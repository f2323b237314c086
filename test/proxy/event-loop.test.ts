// The event-loop delay gauges: a loop blocked on purpose shows up in the window's max and in the peak.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { eventLoopGauges, watchEventLoop } from '../../src/proxy/event-loop.js'
import { Stats } from '../../src/stats/stats.js'

t.test('a 300 ms block of the loop shows in max and peak (microseconds); the gauges are marked used', async (t) => {
  const stats = new Stats()
  const stop = watchEventLoop(stats, 100)
  t.teardown(stop)
  await sleep(150)
  const end = Date.now() + 300
  while (Date.now() < end) {
    // busy: nothing else can run, which is what the gauge is for
  }
  await sleep(250)
  const s = stats.snapshot()
  t.ok(s[eventLoopGauges.peak]! >= 250_000, `peak ${s[eventLoopGauges.peak]} us covers the 300 ms block`)
  t.ok(s[eventLoopGauges.p50]! < s[eventLoopGauges.peak]!, 'p50 is below the peak')
  t.ok(stats.gauges.get(eventLoopGauges.max)?.used, 'shown by /stats?usedonly')
  await sleep(250)
  t.ok(stats.snapshot()[eventLoopGauges.max]! < 250_000, 'a later window without a block has a smaller max')
  t.ok(stats.snapshot()[eventLoopGauges.peak]! >= 250_000, 'the peak keeps the worst window')
})
