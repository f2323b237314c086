// pino's JSON lines as text for a person at a terminal: time, level, component and message, then the
// fields as key=value; JSON for pipes, files and tests unless asked otherwise.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { formatLogLine, resolveLogFormat } from '../src/log-format.js'
import { createLogger, flushLogs } from '../src/logger.js'

const at = new Date(2026, 11, 7, 9, 4, 5, 67).getTime() // local time, as the formatter prints it

t.test('a pino line: HH:MM:SS.mmm, level, component: message, then key=value (pid and hostname left out)', async (t) => {
  const line = JSON.stringify({ level: 40, time: at, pid: 7, hostname: 'h', component: 'iptables', target: 'ns slt-a', n: 3, msg: 'hi' })
  t.equal(formatLogLine(line + '\n'), '09:04:05.067 WARN  iptables: hi target="ns slt-a" n=3\n')
})

t.test('objects as JSON, an error as its code and message', async (t) => {
  const line = JSON.stringify({
    level: 50,
    time: at,
    msg: 'accept failed',
    delta: ['a b'],
    err: { type: 'Error', message: 'too many open files', code: 'EMFILE', stack: 'Error: ...' },
  })
  t.equal(formatLogLine(line), '09:04:05.067 ERROR accept failed delta=["a b"] err="EMFILE: too many open files"\n')
})

t.test('a line that is not pino JSON passes unchanged', async (t) => {
  for (const l of ['[2026-12-07T09:04:05.067Z] "- - -" 0 - - -\n', '{"not":"pino"}\n', 'null\n', '{broken\n']) t.equal(formatLogLine(l), l)
})

t.test('the format: the flag, else the environment, else text on a terminal and json otherwise', async (t) => {
  const tty = { isTTY: true }
  const pipe = {}
  t.equal(resolveLogFormat(undefined, {}, tty), 'text')
  t.equal(resolveLogFormat(undefined, {}, pipe), 'json')
  t.equal(resolveLogFormat(undefined, { SIDECAR_LAB_LOG_FORMAT: 'text' }, pipe), 'text')
  t.equal(resolveLogFormat('json', { SIDECAR_LAB_LOG_FORMAT: 'text' }, tty), 'json')
  t.throws(() => resolveLogFormat('pretty', {}, pipe), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: '--log-format: expected json or text, not "pretty"',
  })
  t.throws(() => resolveLogFormat(undefined, { SIDECAR_LAB_LOG_FORMAT: 'yaml' }, pipe), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: 'SIDECAR_LAB_LOG_FORMAT: expected json or text, not "yaml"',
  })
})

t.test('createLogger writes text lines in text format and JSON by default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slt-logfmt-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  createLogger({ destination: join(dir, 'text.log'), format: 'text' })
    .child({ component: 'admin' })
    .info({ port: 15000 }, 'listening')
  createLogger({ destination: join(dir, 'json.log') }).info({ port: 15000 }, 'listening')
  await flushLogs()
  t.match(readFileSync(join(dir, 'text.log'), 'utf8'), /^\d\d:\d\d:\d\d\.\d{3} INFO {2}admin: listening port=15000\n$/)
  t.match(JSON.parse(readFileSync(join(dir, 'json.log'), 'utf8')), { level: 30, msg: 'listening', port: 15000 })
})

t.test('lists read as one value, and a long value is cut short (the JSON form keeps it whole)', async (t) => {
  const line = JSON.stringify({
    level: 30,
    time: Date.UTC(2026, 0, 1),
    msg: 'dns proxy ready',
    listen: ['127.0.0.1:15053', '[::1]:15053'],
    table: { names: Array.from({ length: 20 }, (_, i) => `svc-${i}.default.svc.cluster.local`) },
  })
  const text = formatLogLine(line)
  t.match(text, / listen=127\.0\.0\.1:15053,\[::1\]:15053 /)
  const table = / table=(\S+)\n$/.exec(text)?.[1] ?? ''
  t.equal(table.length, 60, 'cut to 60 characters')
  t.ok(table.endsWith('…'), 'and says so')
})
