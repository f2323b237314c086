#!/usr/bin/env node
// Runs the tap suite with the raw TAP reporter, passes its output through, and ends with the one line
// CI reads: "N passed, N failed, N skipped", counting each named test (a file's top-level subtests).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// On a fresh clone, install and build first, so `npm test` is the one command a newcomer needs.
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (program, args) => spawnSync(program, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root }).status
const setup = run('bash', [join(root, 'scripts/setup.sh')])
if (setup !== 0) process.exit(setup ?? 1)

// Unit tests import src/ while the CLI and integration tests run dist/ and the addon: build both from the
// tree as it is now, so the two halves test the same code (tsc from scratch takes seconds; node-gyp's make
// rebuilds only when native/ changed).
if (run('node', [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']) !== 0) process.exit(1)
const addon = join(root, 'build/Release/sockopt.node')
const addonAge = existsSync(addon) ? statSync(addon).mtimeMs : 0
const sources = ['binding.gyp', ...readdirSync(join(root, 'native')).map((f) => join('native', f))]
if (sources.some((f) => statSync(join(root, f)).mtimeMs > addonAge)) {
  // npm puts its own node-gyp on the script's PATH (the one `npm ci` builds the addon with).
  if (run('npm', ['run', '--silent', 'build:addon']) !== 0) process.exit(1)
}

// A dockerd that the Docker lab's test starts (through scripts/docker-image.sh) is stopped when the tests end;
// one that was running before, ours or not, is left running.
const dockerdBefore = run('bash', [join(root, 'scripts/docker-daemon.sh'), 'ours']) === 0

const files = process.argv.slice(2)
const child = spawn(join(root, 'node_modules/.bin/tap'), ['--reporter=tap', ...files], { stdio: ['ignore', 'pipe', 'inherit'], cwd: root })
let passed = 0
let failed = 0
let skipped = 0
let fileFailedWithoutTests = 0
let failuresInFile = 0
const failures = []
let currentFile = ''

const lines = createInterface({ input: child.stdout })
lines.on('line', (line) => {
  process.stdout.write(line + '\n')
  const sub = /^ {4}(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*| # time=.*)?$/.exec(line)
  if (sub) {
    if (sub[3]) skipped++
    else if (sub[1]) {
      failed++
      failuresInFile++
      failures.push(`${currentFile}: ${sub[2]}`)
    } else passed++
    return
  }
  const start = /^# Subtest: (.*)$/.exec(line)
  if (start) {
    currentFile = start[1]
    failuresInFile = 0
    return
  }
  const top = /^(not )?ok \d+ - (\S+)/.exec(line)
  if (top && top[1] && failuresInFile === 0) {
    // A file that crashed or timed out before any of its tests reported still counts as a failure.
    fileFailedWithoutTests++
    failures.push(`${top[2]}: file failed outside its tests`)
  }
})

child.on('close', (code) => {
  lines.close()
  if (!dockerdBefore) run('bash', [join(root, 'scripts/docker-daemon.sh'), 'stop'])
  const totalFailed = failed + fileFailedWithoutTests
  if (failures.length) {
    process.stdout.write('\nFailed:\n' + failures.map((f) => `  ${f}`).join('\n') + '\n')
  }
  process.stdout.write(`\n${passed} passed, ${totalFailed} failed, ${skipped} skipped\n`)
  process.exit(code === 0 && totalFailed === 0 ? 0 : 1)
})
