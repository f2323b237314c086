// The descriptor budget: its size from RLIMIT_NOFILE, and one warning per burst of shortages.
import t from 'tap'
import { pino } from 'pino'
import { FdBudget, fileLimits, relayPipesFor, reserveFor } from '../../src/proxy/fd-budget.js'
import { eventually } from '../helpers/wait.js'

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) })
  return { log, lines }
}

t.test('the budget is the soft limit minus the descriptors open at start minus the reserve', async (t) => {
  const limits = fileLimits()
  t.ok(limits, 'RLIMIT_NOFILE read from /proc/self/limits')
  const budget = new FdBudget(capture().log)
  t.equal(budget.max, Number.POSITIVE_INFINITY, 'unlimited until measured')
  budget.measure()
  t.ok(
    budget.max > 0 && budget.max < limits!.soft - reserveFor(limits!.soft),
    `max ${budget.max} below the soft limit ${limits!.soft} minus the reserve`,
  )
  t.ok(budget.take(budget.max), 'the whole budget can be taken')
  t.notOk(budget.take(1), 'one more cannot')
  budget.release(2)
  t.ok(budget.take(2), 'released descriptors can be taken again')
})

t.test("with the native relay, its pipes' descriptors are set aside too: a sixteenth of the limit, at most 4096 pipes", async (t) => {
  t.same(
    [64, 256, 1024, 1_048_576, Number.POSITIVE_INFINITY].map(relayPipesFor),
    [4, 16, 64, 4096, 4096],
    'pipes for 64, 256, 1024, 1048576 descriptors and no limit',
  )
  const soft = fileLimits()!.soft
  const plain = new FdBudget(capture().log)
  const native = new FdBudget(capture().log, { relayPipes: true })
  plain.measure()
  native.measure()
  t.equal(plain.max - native.max, 2 * relayPipesFor(soft), `${2 * relayPipesFor(soft)} fewer for connections`)
  const { log, lines } = capture()
  const warned = new FdBudget(log, { relayPipes: true })
  warned.measure()
  warned.overflow('virtualOutbound')
  t.match(
    String(lines.find((l) => l.level === 40)?.msg),
    new RegExp(`, ${2 * relayPipesFor(soft)} for the relay's pipes\\)`),
    'the warning names them',
  )
})

t.test('one warning per burst; the end of a burst is logged with its counts', async (t) => {
  const { log, lines } = capture()
  const budget = new FdBudget(log)
  budget.measure()
  for (let i = 0; i < 50; i++) budget.overflow('virtualOutbound')
  budget.exhausted('virtualOutbound', Object.assign(new Error('connect EMFILE'), { code: 'EMFILE' }))
  const warns = () => lines.filter((l) => l.level === 40)
  t.equal(warns().length, 1, 'one warning for 51 shortages in a row')
  t.match(String(warns()[0]!.msg), /out of file descriptors \(EMFILE: this process's limit is \d+ \(RLIMIT_NOFILE soft \d+, hard \d+\)\)/)
  // the burst ends after a quiet second: wait for its closing line
  const end = await eventually(() => lines.find((l) => l.msg === 'file descriptors available again'), 5000)
  t.match(end, { overflow: 50, exhausted: 1 }, 'the burst ended after a quiet second, with its counts')
  budget.exhausted('virtualInbound', Object.assign(new Error('connect ENFILE'), { code: 'ENFILE' }))
  t.equal(warns().length, 2, 'the next shortage is a new burst with its own warning')
  t.match(String(warns()[1]!.msg), /ENFILE: the system-wide file table is full \(fs\.file-max\)/)
})
