// The LineWriter under the access log and the sidecar's own log, on real kernel pipes: a reader that stops
// reading (EAGAIN), a reader that is gone (EPIPE). The writer never blocks the event loop, drops what does
// not fit and reports it, and delivers every line it accepted whole and in order.
import t from 'tap'
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../../src/sys/exec.js'
import { LineWriter } from '../../src/line-writer.js'

/** A FIFO opened non-blocking at both ends, as a pipe to a slow log collector is. */
async function fifo(t: { teardown(fn: () => unknown): void }): Promise<{ reader: number; writer: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'slt-log-fifo-'))
  const path = join(dir, 'pipe')
  await run('mkfifo', [path])
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
  t.teardown(() => {
    for (const fd of [reader, writer]) {
      try {
        closeSync(fd)
      } catch {
        // the test may have closed it already
      }
    }
    rmSync(dir, { recursive: true, force: true })
  })
  return { reader, writer }
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(1 << 16)
  let out = ''
  for (;;) {
    try {
      const n = readSync(fd, buf)
      if (n === 0) return out
      out += buf.toString('utf8', 0, n)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out
      throw err
    }
  }
}

t.test(
  'a reader that stops: lines beyond the buffer are dropped and reported, the accepted ones arrive whole once it reads again',
  async (t) => {
    const { reader, writer: fd } = await fifo(t)
    let overflow = 0
    const failures: string[] = []
    const writer = new LineWriter(fd, {
      maxBuffered: 32 * 1024,
      events: { overflow: (n) => (overflow += n), failed: (e) => failures.push(e.code ?? '') },
    })
    const line = (i: number) => `line ${String(i).padStart(6, '0')} ${'x'.repeat(90)}\n`
    const accepted: number[] = []
    // 2000 lines of 104 bytes (208 kB) into a 64 KiB pipe nobody reads, with 32 KiB of room in the writer
    for (let i = 0; i < 2000; i++) {
      if (writer.write(line(i))) accepted.push(i)
      if (i % 100 === 0) await new Promise((r) => setImmediate(r))
    }
    t.ok(overflow > 0, `lines beyond the buffer were dropped and reported (${overflow})`)
    t.equal(accepted.length + overflow, 2000, 'every line is either accepted or reported dropped')
    t.same(failures, [], 'a full pipe is not a failure: the writer waits for it (EAGAIN) without blocking')
    let got = ''
    const end = Date.now() + 10_000
    while (got.split('\n').length - 1 < accepted.length && Date.now() < end) {
      got += readAll(reader)
      await new Promise((r) => setTimeout(r, 20))
    }
    await writer.flush(1000)
    got += readAll(reader)
    t.same(
      got.split('\n').filter(Boolean),
      accepted.map((i) => line(i).trimEnd()),
      'the accepted lines arrived whole and in order',
    )
    t.equal(writer.buffered, 0, 'nothing left buffered')
  },
)

t.test('a reader that is gone: writes fail with EPIPE, their lines are reported lost, nothing throws', async (t) => {
  const { reader, writer: fd } = await fifo(t)
  closeSync(reader)
  const lost: string[] = []
  const writer = new LineWriter(fd, { events: { failed: (e, n) => lost.push(`${e.code}:${n}`) } })
  for (let i = 0; i < 5; i++) {
    writer.write(`line ${i}\n`)
    await writer.flush(1000)
  }
  t.ok(
    lost.length > 0 && lost.every((l) => l.startsWith('EPIPE:')),
    `writes failed with EPIPE and said how many lines were lost (${lost.join(' ')})`,
  )
  t.equal(
    lost.reduce((n, l) => n + Number(l.split(':')[1]), 0),
    5,
    'all 5 lines reported lost',
  )
})
