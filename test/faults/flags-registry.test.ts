// Hostile and mistaken proxy flags through the CLI as a user runs it: exit code 2 and a message that names
// the problem without passing raw bytes or terminal escapes through.
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../helpers/pods.js'

const cliPath = join(repoRoot, 'dist/cli.js')
// eslint-disable-next-line no-control-regex -- the test looks for exactly these characters
const controlChars = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/ // newline aside: stderr is lines

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [cliPath, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('a registry file of random bytes is refused naming file and line, with no control character', async (t) => {
  const dir = t.testdir({})
  // Line 3 is the garbage: random bytes without newline or '#' (which would end the line or start a
  // comment), with a clear-screen escape in the middle.
  const noise = () => Buffer.from([...randomBytes(300)].filter((b) => b !== 0x0a && b !== 0x23))
  const file = join(dir, 'registry.bin')
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from('reviews=198.18.0.2:9080\n# known services\n'),
      noise(),
      Buffer.from('\x1b[2J'),
      noise(),
      Buffer.from('\n'),
    ]),
  )
  const r = await cli(['proxy', '--registry-file', file])
  t.equal(r.code, 2)
  t.match(r.stderr, `error: --registry-file "${file}" line 3: "`)
  t.match(r.stderr, /"… \(\d+ characters\) has no valid IP address/)
  t.notMatch(r.stderr, controlChars)
  const quoted = /line 3: ("(?:[^"\\]|\\.)*")…/.exec(r.stderr)?.[1] ?? '""'
  t.equal(Array.from(JSON.parse(quoted) as string).length, 80, 'the line is cut to 80 characters, quoted as JSON quotes')
  t.equal(r.stdout, '')
})

t.test('a registry file that is all random bytes is refused the same way', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'registry.bin')
  writeFileSync(file, Buffer.concat([randomBytes(4096), Buffer.from('\x1b[2J\x1b]0;owned\x07'), randomBytes(4096)]))
  const r = await cli(['proxy', '--registry-file', file])
  t.equal(r.code, 2)
  t.match(r.stderr, new RegExp(`^error: --registry-file "${file}" line \\d+: "`))
  t.notMatch(r.stderr, controlChars)
})

t.test('two listeners on one port are refused before anything binds', async (t) => {
  const r = await cli(['proxy', '--outbound-port', '15006'])
  t.equal(r.code, 2)
  t.equal(r.stderr, 'error: --outbound-port and --inbound-port are both 15006: each needs a port of its own\n')
  const a = await cli(['proxy', '--inbound-port', '15000'])
  t.equal(a.code, 2)
  t.equal(a.stderr, 'error: --inbound-port and --admin-port are both 15000: each needs a port of its own\n')
})

t.test('negative numbers get our message, not parseArgs\' "ambiguous"', async (t) => {
  const r = await cli(['proxy', '--outbound-port', '-1'])
  t.equal(r.code, 2)
  t.equal(r.stderr, 'error: --outbound-port: -1 is not a port (1-65535)\n')
  const d = await cli(['proxy', '--idle-timeout', '-5'])
  t.equal(d.code, 2)
  t.equal(d.stderr, 'error: --idle-timeout: -5 is negative (0 or more: 500ms, 10s, 5m, 1h)\n')
})

t.test('--uid and --gid given to a proxy not started as root are named in a warning', async (t) => {
  // As root the proxy is started as nobody (65534); unprivileged it runs as the test's own user.
  const root = process.getuid?.() === 0
  const uid = root ? 65534 : process.getuid!()
  const gid = root ? 65534 : process.getgid!()
  const port = 20000 + Math.floor(Math.random() * 40000)
  const child = spawn(
    'node',
    [
      cliPath,
      'proxy',
      '--uid',
      String(uid + 1),
      '--gid',
      String(gid + 1),
      '--outbound-port',
      String(port),
      '--inbound-port',
      String(port + 1),
      '--admin-port',
      '0',
      '--health-port',
      '0',
      '--prometheus-port',
      '0',
      '--merged-metrics-port',
      '0',
      '--access-log',
      'off',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], ...(root ? { uid, gid } : {}) },
  )
  t.teardown(() => child.kill('SIGKILL'))
  let stderr = ''
  const warned = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no warning within 15 s; stderr: ${stderr}`)), 15_000)
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      const line = stderr.split('\n').find((l) => l.includes('"level":40'))
      if (line) {
        clearTimeout(timer)
        resolve(line)
      }
    })
    child.on('exit', () => {
      clearTimeout(timer)
      reject(new Error(`exited before warning; stderr: ${stderr}`))
    })
  })
  const line = JSON.parse(await warned) as { msg: string; uid: number; gid: number }
  t.equal(line.msg, `--uid ${uid + 1} and --gid ${gid + 1} are ignored: not started as root, the proxy runs as uid ${uid}, gid ${gid}`)
  t.same([line.uid, line.gid], [uid, gid])
  child.kill('SIGTERM')
})
