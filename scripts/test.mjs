#!/usr/bin/env node
// Runs the tap suite with the raw TAP reporter, passes its output through, and ends with the one line
// CI reads: "N passed, N failed, N skipped", counting each named test (a file's top-level subtests).
// The files both relay engines must pass (scripts/relay-engines.mjs) then run a second time with
// SIDECAR_LAB_TEST_RELAY=native; the last line sums both runs and each failure names its engine.
// usage: node scripts/test.mjs [--no-setup] [FILE...]   (--no-setup: the caller installed and built, see test-asan.mjs)
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addonHasRelay, engineFiles, engineInTree } from './relay-engines.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (program, args) => spawnSync(program, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root }).status
const noSetup = process.argv[2] === '--no-setup'
const files = process.argv.slice(noSetup ? 3 : 2)

if (!noSetup) {
  // On a fresh clone, install and build first, so `npm test` is the one command a newcomer needs.
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
}

// A dockerd that the Docker lab's test starts (through scripts/docker-image.sh) is stopped when the tests end;
// one that was running before, ours or not, is left running.
const dockerdBefore = run('bash', [join(root, 'scripts/docker-daemon.sh'), 'ours']) === 0

const totals = { passed: 0, failed: 0, skipped: 0 }
const failures = []

/** One tap run; its counts go into totals and its failures are named with the engine. */
function tap(engine, tapFiles) {
  const env = { ...process.env, SIDECAR_LAB_TEST_RELAY: engine }
  const child = spawn(join(root, 'node_modules/.bin/tap'), ['--reporter=tap', ...tapFiles], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: root,
    env,
  })
  let failuresInFile = 0
  let currentFile = ''
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    process.stdout.write(line + '\n')
    const sub = /^ {4}(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*| # time=.*)?$/.exec(line)
    if (sub) {
      if (sub[3]) totals.skipped++
      else if (sub[1]) {
        totals.failed++
        failuresInFile++
        failures.push(`[${engine}] ${currentFile}: ${sub[2]}`)
      } else totals.passed++
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
      totals.failed++
      failures.push(`[${engine}] ${top[2]}: file failed outside its tests`)
    }
  })
  return new Promise((res) =>
    child.on('close', (code) => {
      lines.close()
      res(code)
    }),
  )
}

/** The engine-shared files among those asked for (all of them when none were named). */
function nativeFiles() {
  if (files.length === 0) return engineFiles
  const asked = new Set(files.map((f) => relative(root, resolve(f))))
  return engineFiles.filter((f) => asked.has(f))
}

let code = await tap('node', files)
const second = nativeFiles()
let note = ''
if (second.length > 0 && addonHasRelay(root)) {
  process.stdout.write(
    `\n# relay engine native (SIDECAR_LAB_TEST_RELAY=native): ${second.length} files, listed in scripts/relay-engines.mjs\n`,
  )
  code = (await tap('native', second)) || code
} else if (second.length > 0 && engineInTree(root)) {
  // The engine's sources are here, so its runs may never be skipped: a build without it is a failure.
  totals.failed++
  failures.push('[native] the built addon does not export relayStart although native/relay.c or src/native/relay.ts exists')
} else if (second.length > 0)
  note = `\nThe native engine's runs of ${second.length} files were not made: the engine is not in this tree (the addon has no relayStart)\n`

if (!dockerdBefore) run('bash', [join(root, 'scripts/docker-daemon.sh'), 'stop'])
if (failures.length) process.stdout.write('\nFailed:\n' + failures.map((f) => `  ${f}`).join('\n') + '\n')
process.stdout.write(`${note}\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`)
process.exit(code === 0 && totals.failed === 0 ? 0 : 1)
