#!/usr/bin/env node
// Runs the tap suite with the raw TAP reporter, passes its output through, and ends with the one line
// CI reads: "N passed, N failed, N skipped", counting each named test (a file's top-level subtests).
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// On a fresh clone, install and build first, so `npm test` is the one command a newcomer needs.
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const setup = spawnSync('bash', [join(root, 'scripts/setup.sh')], { stdio: ['ignore', 'inherit', 'inherit'], cwd: root })
if (setup.status !== 0) process.exit(setup.status ?? 1)

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
  const sub = /^    (not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*| # time=.*)?$/.exec(line)
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
  const totalFailed = failed + fileFailedWithoutTests
  if (failures.length) {
    process.stdout.write('\nFailed:\n' + failures.map((f) => `  ${f}`).join('\n') + '\n')
  }
  process.stdout.write(`\n${passed} passed, ${totalFailed} failed, ${skipped} skipped\n`)
  process.exit(code === 0 && totalFailed === 0 ? 0 : 1)
})
