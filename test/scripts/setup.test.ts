// scripts/setup.sh's npm step, with a stand-in npm first on PATH in a copy of the script: the build's output
// (node-gyp's 50 lines) goes to setup.log, not the terminal; a failed build shows the log and fails.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { repoRoot } from '../helpers/pods.js'

function setupCopy(t: Test, npmExit: number) {
  const dir = mkdtempSync(join(tmpdir(), 'slt-setup-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'scripts'))
  mkdirSync(join(dir, 'bin'))
  copyFileSync(join(repoRoot, 'scripts/setup.sh'), join(dir, 'scripts/setup.sh'))
  const npm = join(dir, 'bin/npm')
  const lines = Array.from({ length: 50 }, (_, i) => `gyp info spawn args line ${i}`).join('\n')
  writeFileSync(npm, `#!/bin/sh\necho "npm $*"\ncat <<'X'\n${lines}\nX\necho 'gyp ERR! the last line' >&2\nexit ${npmExit}\n`)
  chmodSync(npm, 0o755)
  const r = spawnSync('bash', [join(dir, 'scripts/setup.sh'), '--ci'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
    timeout: 60_000,
  })
  return { ...r, dir }
}

t.test('a build that works: one line on the terminal, the output in setup.log', async (t) => {
  const r = setupCopy(t, 0)
  t.equal(r.status, 0)
  t.equal(r.stdout, '')
  t.equal(r.stderr, 'setup: npm ci (builds the addon and dist/; its output in setup.log)\n')
  const log = readFileSync(join(r.dir, 'setup.log'), 'utf8')
  t.match(log, /^npm ci --no-audit --no-fund\n/)
  t.match(log, 'gyp info spawn args line 49\ngyp ERR! the last line\n')
})

t.test('a build that fails: the log on the terminal, exit non-zero', async (t) => {
  const r = setupCopy(t, 3)
  t.equal(r.status, 3)
  t.match(r.stderr, 'gyp info spawn args line 0\n')
  t.match(r.stderr, /gyp ERR! the last line\nsetup: npm ci failed \(exit 3\); its output above is in .*setup\.log\n$/)
})

t.test("every dependency's install script is allowed or denied in package.json (no npm warning at install)", async (t) => {
  const r = spawnSync('npm', ['install-scripts', 'ls'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 0, r.stderr)
  t.notMatch(r.stdout + r.stderr, /not yet covered/, `npm install-scripts ls:\n${r.stdout}`)
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }
  t.same(pkg.allowScripts, { esbuild: true, 'es5-ext': false }, "esbuild's binary check runs; es5-ext's message does not")
})
