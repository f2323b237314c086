#!/usr/bin/env node
// Runs the tap suite with the raw TAP reporter, prints a line a file, and ends with the one line CI reads:
// "N passed, N failed, N skipped", counting each named test (a file's top-level subtests).
// The files both relay engines must pass (scripts/relay-engines.mjs) run a second time with
// SIDECAR_LAB_TEST_RELAY=native; the counts sum both runs and each failure names its engine.
//
// Tiers (scripts/test-tiers.mjs): `npm test` runs the fast tier with the default engine, `npm run test:slow`
// the slow tier and the native engine's pass of the relay-engine files; CI runs both.
// With SIDECAR_LAB_TEST_TOTALS=FILE each run adds its counts to FILE and ends with one more line,
// "total: N passed, N failed, N skipped", over every run that wrote there (CI's last line).
//
// Each run has a folder, <tmpdir>/sidecar-lab-run-<pid>, that the tests' processes find in their environment
// (src/lab/sweep.ts): on SIGINT, SIGTERM or SIGHUP the tests are stopped and everything the run made is
// removed before the runner exits non-zero, saying what it removed; a run that starts removes what an
// interrupted one left.
// Output: a line a file (time, counts), a failed file's TAP in full below its line, the whole TAP stream in
// .tap/test.tap (.tap/asan.tap for test:asan).
// usage: node scripts/test.mjs [--no-setup] [--tap] [--tier fast|slow|all] [--jobs N] [FILE...]
//   --no-setup: the caller installed and built (scripts/test-asan.sh)
//   --tap: print the whole TAP stream instead of a line a file
//   FILE...: just these files, whatever their tier
import { spawn, spawnSync } from 'node:child_process'
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createInterface } from 'node:readline'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { addonHasRelay, engineFiles } from './relay-engines.mjs'
import { slowFiles, tierFiles } from './test-tiers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (program, args) => spawnSync(program, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: root }).status
const { values, positionals } = parseArgs({
  options: {
    'no-setup': { type: 'boolean' },
    tap: { type: 'boolean' },
    tier: { type: 'string', default: 'fast' },
    jobs: { type: 'string' },
  },
  allowPositionals: true,
})
if (!['fast', 'slow', 'all'].includes(values.tier)) {
  process.stderr.write(`test: --tier is fast, slow or all, not ${JSON.stringify(values.tier)}\n`)
  process.exit(2)
}
// Files at once: the fast tier's tests mostly wait (on namespaces, processes, timers), so they share the cores;
// the slow tier's measure (bench, soak) or load the machine on purpose (NAT clash), so they run one at a time.
const jobs = values.jobs === undefined ? (values.tier === 'fast' && positionals.length === 0 ? 3 : 1) : Number(values.jobs)
if (!Number.isInteger(jobs) || jobs < 1 || jobs > 16) {
  process.stderr.write(`test: --jobs is a whole number from 1 to 16, not ${JSON.stringify(values.jobs)}\n`)
  process.exit(2)
}

if (!values['no-setup']) {
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

const sweep = await import(pathToFileURL(join(root, 'dist/lab/sweep.js')).href)
const { createLogger } = await import(pathToFileURL(join(root, 'dist/logger.js')).href)
const log = createLogger({ level: 'warn' })
const say = (line) => process.stdout.write(`# test: ${line}\n`)

// What an interrupted run left (its runner is gone): removed first, so this run starts on a clean machine.
for (const dir of sweep.runDirs(tmpdir())) {
  if (sweep.liveOwner(dir) === undefined)
    say(`an earlier run was interrupted (${dir}): ${sweep.describeSweep(await sweep.sweepRun(dir, log))}`)
}
const runDir = join(tmpdir(), `${sweep.runPrefix}${process.pid}`)
mkdirSync(join(runDir, 'tmp'), { recursive: true })
chmodSync(join(runDir, 'tmp'), 0o1777) // the sidecars (uid 1337) and apps (uid 1000) make folders here too
sweep.writeOwner(runDir)
const runEnv = sweep.runEnvironment(runDir)

// A dockerd that the Docker lab's test starts (through scripts/docker-image.sh) is stopped when the tests end;
// one that was running before, ours or not, is left running.
const dockerdBefore = run('bash', [join(root, 'scripts/docker-daemon.sh'), 'ours']) === 0

const totals = { passed: 0, failed: 0, skipped: 0 }
// what the run is called: its TAP file's name, and its part of the closing list of failures (test:asan names itself)
const runName = process.env.SIDECAR_LAB_TEST_LABEL ?? (positionals.length ? 'named files' : `${values.tier} tier`)
// The whole TAP stream of the run, for when a line per file is not enough (--tap prints it instead). A run
// started by a test of another run (interrupt.test.ts) keeps its own in its run folder: .tap/ is the outer one's.
const nested = process.env.SIDECAR_LAB_RUN !== undefined
const tapPath = nested ? join(runDir, 'test.tap') : join(root, '.tap', `${process.env.SIDECAR_LAB_TEST_LABEL ?? 'test'}.tap`)
mkdirSync(dirname(tapPath), { recursive: true })
const tapLog = openSync(tapPath, 'w')
const failures = []
/** each file's time, per engine run */
const times = []
let child
let interrupted

/**
 * What failed inside a failed test, for the closing list (CI shows only the output's tail): the failed
 * assertions' names and the first lines of their diffs, since the test's last result.
 */
function failureDetail(lines) {
  const since = lines.findLastIndex((l, i) => i < lines.length - 1 && /^ {4}(not )?ok \d+ - /.test(l))
  const out = []
  for (const l of lines.slice(since + 1)) {
    const t = l.trim()
    if (/^not ok \d+ - /.test(t)) out.push(`    ${t}`)
    else if (/^[-+][^-+]/.test(t) && out.length) out.push(`      ${t}`)
    else if (/^(message|found|wanted|error): /.test(t) && out.length) out.push(`      ${t}`)
  }
  const cut = out.slice(0, 12).map((l) => (l.length > 200 ? l.slice(0, 199) + '…' : l))
  if (out.length > cut.length) cut.push(`      (${out.length - cut.length} more lines in the .tap file)`)
  return cut.length ? '\n' + cut.join('\n') : ''
}

/** One tap run; its counts go into totals and its failures are named with the engine. */
function tap(engine, tapFiles) {
  // tap's limit per file is 300 s (package.json); the bench's file takes 200 s on a quiet machine
  const timeout = tapFiles.some((f) => slowFiles.includes(f)) ? ['--timeout=900'] : []
  child = spawn(join(root, 'node_modules/.bin/tap'), ['--reporter=tap', `--jobs=${jobs}`, ...timeout, ...tapFiles], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: root,
    env: { ...process.env, ...runEnv, SIDECAR_LAB_TEST_RELAY: engine },
  })
  // tap prints each file as one block (jobs > 1 too): "# Subtest: FILE", its indented lines, "ok N - FILE".
  const file = { name: '', lines: [], passed: 0, failed: 0, skipped: 0 }
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    writeSync(tapLog, line + '\n')
    if (values.tap) process.stdout.write(line + '\n')
    const sub = /^ {4}(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*| # time=.*)?$/.exec(line)
    if (sub) {
      const outcome = sub[3] ? 'skipped' : sub[1] ? 'failed' : 'passed'
      totals[outcome]++
      file[outcome]++
      if (outcome === 'failed') failures.push(`[${engine}] ${file.name}: ${sub[2]}` + failureDetail(file.lines))
    }
    const start = /^# Subtest: (.*)$/.exec(line)
    if (start) {
      Object.assign(file, { name: start[1], lines: [], passed: 0, failed: 0, skipped: 0 })
    }
    // (a failed file's own YAML after its result, tap's command line, is in the .tap file only)
    if (/^\s/.test(line) || start) {
      file.lines.push(line)
      return
    }
    const top = /^(not )?ok \d+ - (\S+)(?:.* # time=([\d.]+)ms)?/.exec(line)
    if (!top) {
      if (/^Bail out!/.test(line) && !values.tap) process.stdout.write(line + '\n')
      return
    }
    if (top[3]) times.push({ file: top[2], engine, ms: Number(top[3]) })
    if (top[1] && file.failed === 0) {
      // A file that crashed or timed out before any of its tests reported still counts as a failure.
      totals.failed++
      file.failed++
      failures.push(`[${engine}] ${top[2]}: file failed outside its tests`)
    }
    if (values.tap) return
    // One line a file; a failed file's whole TAP block follows its line.
    const seconds = top[3] ? `${(Number(top[3]) / 1000).toFixed(1)} s` : ''
    const counts = [`${file.passed} passed`, file.failed && `${file.failed} failed`, file.skipped && `${file.skipped} skipped`]
    const label = `${top[1] ? 'FAIL' : 'ok  '} ${seconds.padStart(7)}  ${top[2]}${engine === 'native' ? ' (native)' : ''}`
    process.stdout.write(`${label}  ${counts.filter(Boolean).join(', ')}\n`)
    if (top[1]) process.stdout.write(file.lines.join('\n') + '\n' + line + '\n')
  })
  return new Promise((res) =>
    child.on('close', (code) => {
      lines.close()
      child = undefined
      res(code)
    }),
  )
}

/** Stops the tests, removes what the run made, says what, and exits. */
async function stop(signal) {
  if (interrupted) return
  interrupted = signal
  say(`${signal}: stopping the tests and removing what they made`)
  if (child) {
    const closed = new Promise((res) => child?.once('close', res))
    child.kill('SIGTERM')
    // tap ends its test processes on SIGTERM; whatever still runs after 5 s the sweep kills
    await Promise.race([closed, new Promise((res) => setTimeout(res, 5000))])
  }
  say(`${signal}: ${sweep.describeSweep(await sweep.sweepRun(runDir, log))}`)
  if (!dockerdBefore) run('bash', [join(root, 'scripts/docker-daemon.sh'), 'stop'])
  process.stdout.write(`\n${totals.passed} passed, ${totals.failed + 1} failed, ${totals.skipped} skipped\n`)
  process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143)
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => void stop(signal))
// The process that started the run ended without passing a signal on (a shell between npm and node dies of
// SIGTERM and leaves this one running): as a hang-up.
const parent = process.ppid
setInterval(() => process.ppid !== parent && void stop('SIGHUP'), 500).unref()

/** This run's files: those named, or the tier's. */
const files = positionals.length ? positionals.map((f) => relative(root, resolve(f))) : tierFiles(root, values.tier)

let code = await tap('node', files)
// The second engine's pass: with named files, those among them both engines run; by tier, the slow tier's
// (npm test stays with the default engine, so it finishes in minutes; CI runs both tiers).
const second =
  positionals.length || values.tier === 'all' ? engineFiles.filter((f) => files.includes(f)) : values.tier === 'slow' ? engineFiles : []
if (!interrupted && second.length > 0 && (await addonHasRelay(root))) {
  process.stdout.write(
    `\n# relay engine native (SIDECAR_LAB_TEST_RELAY=native): ${second.length} files, listed in scripts/relay-engines.mjs\n`,
  )
  code = (await tap('native', second)) || code
} else if (!interrupted && second.length > 0) {
  // The native engine's runs may never be skipped: a build without it is a failure.
  totals.failed++
  failures.push('[native] the built addon does not export relayStart: rebuild it (npm run build:addon)')
}
if (interrupted) await new Promise(() => {}) // stop() exits

// Whatever the tests did not remove themselves (a defect of the test, named here), the sweep does.
const swept = await sweep.sweepRun(runDir, log)
// the caches of npm (v8-compile-cache-*) and of the TypeScript loader (tsx-*) land in TMPDIR too: no test's leftovers
swept.tempEntries = swept.tempEntries.filter((n) => !/^(v8-compile-cache|tsx)-/.test(n))
const left = sweep.describeSweep(swept)
if (left !== 'nothing was left') say(`the tests left things behind: ${left}`)
if (!dockerdBefore) run('bash', [join(root, 'scripts/docker-daemon.sh'), 'stop'])

const slowest = times.sort((a, b) => b.ms - a.ms).slice(0, 10)
if (slowest.length) {
  process.stdout.write('\nThe ten slowest files:\n')
  for (const t of slowest)
    process.stdout.write(`  ${(t.ms / 1000).toFixed(1).padStart(6)} s  ${t.file}${t.engine === 'native' ? ' (native)' : ''}\n`)
}
if (failures.length) process.stdout.write('\nFailed:\n' + failures.map((f) => `  ${f}`).join('\n') + '\n')
const summary = (t) => `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`
process.stdout.write(`\n${summary(totals)}\n`)
const totalsFile = process.env.SIDECAR_LAB_TEST_TOTALS
if (totalsFile) {
  appendFileSync(totalsFile, JSON.stringify({ ...totals, failures, run: runName }) + '\n')
  const all = { passed: 0, failed: 0, skipped: 0 }
  const allFailures = []
  for (const line of readFileSync(totalsFile, 'utf8').split('\n').filter(Boolean)) {
    const t = JSON.parse(line)
    for (const k of Object.keys(all)) all[k] += t[k]
    allFailures.push(...(t.failures ?? []).map((f) => `${t.run ?? 'run'}: ${f}`))
  }
  // CI shows only the output's tail: every run's failures are named again here, above the last line.
  if (allFailures.length && allFailures.length !== failures.length)
    process.stdout.write('\nFailed in all runs:\n' + allFailures.map((f) => `  ${f}`).join('\n') + '\n')
  process.stdout.write(`total: ${summary(all)}\n`)
}
process.exit(code === 0 && totals.failed === 0 ? 0 : 1)
