// lab logs: the sidecar's JSON lines shown as text (raw with --json), other lines unchanged, and -f
// printing what is appended until the signal.
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { renderLogText, showLogs } from '../../src/lab/logs.js'

const pinoLine = (msg: string) => JSON.stringify({ level: 30, time: Date.now(), pid: 1, component: 'proxy', msg }) + '\n'
const access = '[2026-12-07T09:04:05.067Z] "- - -" 0 - - - "-" 74 74 1 - "-" "-" "-" "-" "198.18.0.20:9080" PassthroughCluster\n'

function folder(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'slt-lablogs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('JSON lines as text, other lines as they are; --json keeps them raw', async (t) => {
  const text = pinoLine('listening') + access
  const shown = renderLogText(text, { json: false }).out
  t.match(shown, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}proxy: listening\n/)
  t.ok(shown.endsWith(access))
  t.equal(renderLogText(text, { json: true }).out, text)
  t.same(renderLogText('{"level":30', { json: false }), { out: '', rest: '{"level":30' }, 'an unfinished line waits')
})

t.test('every file under a header; a missing file is skipped', async (t) => {
  const dir = folder(t)
  writeFileSync(join(dir, 'sidecar.log'), pinoLine('up'))
  writeFileSync(join(dir, 'access.log'), access)
  let out = ''
  const signal = new AbortController().signal
  await showLogs(
    ['sidecar.log', 'app.log', 'access.log'].map((f) => join(dir, f)),
    { json: false, follow: false, signal },
    (s) => (out += s),
  )
  t.match(
    out,
    new RegExp(`^==> ${dir}/sidecar\\.log <==\\n\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  proxy: up\\n\\n==> ${dir}/access\\.log <==\\n`),
  )
  t.notMatch(out, /app\.log/)
})

t.test('-f prints the lines appended to any file, then stops at the signal', async (t) => {
  const dir = folder(t)
  const sidecar = join(dir, 'sidecar.log')
  const app = join(dir, 'app.log')
  writeFileSync(sidecar, pinoLine('first'))
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  let out = ''
  let waiting: { want: RegExp; resolve: () => void } | undefined
  const seen = (want: RegExp) => new Promise<void>((resolve) => (want.test(out) ? resolve() : (waiting = { want, resolve })))
  const done = showLogs([sidecar, app], { json: false, follow: true, signal: stop.signal }, (s) => {
    out += s
    if (waiting?.want.test(out)) waiting.resolve()
  })
  await seen(/proxy: first\n/)
  const second = pinoLine('second')
  appendFileSync(sidecar, second.slice(0, 20))
  appendFileSync(app, 'app started\n')
  await seen(/==> .*app\.log <==\napp started\n/)
  appendFileSync(sidecar, second.slice(20))
  await seen(/app started\n\n==> .*sidecar\.log <==\n\S+ INFO {2}proxy: second\n/)
  stop.abort()
  await done
  t.notMatch(out, /"level"/, 'no raw JSON, also across a line written in two parts')
})
