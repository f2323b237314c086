// The bench scripts parse their flags with src/flags, as every command does: a bad value names the flag and
// the accepted values, prints the usage and exits 2 before anything is built (no root needed to see it).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '../helpers/pods.js'

function bench(script: string, ...args: string[]) {
  return benchEnv(script, {}, ...args)
}

// As nobody when root: a flag check that let the script through stops at its root check, not in a lab.
const nobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}

function benchEnv(script: string, env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync('node', [join(repoRoot, 'bench', script), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    // without tap's NODE_OPTIONS: they would have the child write coverage files where nobody may not
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS')), ...env },
    ...nobody,
  })
  return { code: r.status, stderr: r.stderr, stdout: r.stdout }
}

t.test('a bad value: exit 2, the script and flag named, then the usage', async (t) => {
  const cases: [string, string[], RegExp][] = [
    [
      'soak.mjs',
      ['--duration', 'soon'],
      /^soak: --duration: "soon" is not a duration \(500ms, 10s, 5m, 1h\)\nusage: node bench\/soak\.mjs/,
    ],
    ['soak.mjs', ['--duration', '3s'], /^soak: --duration: 3s is shorter than 5 s\n/],
    ['soak.mjs', ['--relay', 'fast'], /^soak: --relay: "fast" is not one of node, native\n/],
    ['decompose.mjs', ['--seconds', '0'], /^decompose: --seconds: 0 is out of range \(more than 0 and at most 30\)\n/],
    ['decompose.mjs', ['--rounds', 'x'], /^decompose: --rounds: "x" is not/],
    ['decompose.mjs', ['--relay', 'fast'], /^decompose: --relay: "fast" is not one of node, native\n/],
    ['decompose.mjs', ['--haproxy-nbthread', '3'], /^decompose: --haproxy-nbthread: "3" is not one of 1, 2\n/],
    ['profile.mjs', ['--pod', 'foo'], /^profile: --pod: "foo" is not one of productpage, reviews\n/],
    ['profile.mjs', ['--tool', 'doctor,nope'], /^profile: --tool: "nope" is not among doctor, flame, bubbleprof, heapprofiler\n/],
    ['run.mjs', ['--peers', 'direct,nginx'], /^bench: --peers: "nginx" is not among direct, /],
    ['run.mjs', ['--only', ''], /^bench: --only: give one or more of /],
    ['run.mjs', ['--haproxy-nbthread', '3'], /^bench: --haproxy-nbthread: "3" is not one of 1, 2\n/],
    ['run.mjs', ['--rounds', '0'], /^bench: --rounds: /],
    ['dns.mjs', ['--count', '-5'], /^dns: --count: /],
    ['soak.mjs', ['--nope'], /^soak: unknown flag --nope for 'node bench\/soak\.mjs'/],
  ]
  for (const [script, args, want] of cases) {
    const r = bench(script, ...args)
    t.equal(r.code, 2, `${script} ${args.join(' ')}: exit 2`)
    t.match(r.stderr, want, `${script} ${args.join(' ')}: says what is wrong`)
  }
})

t.test('--help: the usage on stdout, exit 0', async (t) => {
  for (const script of ['soak.mjs', 'decompose.mjs', 'profile.mjs', 'run.mjs', 'dns.mjs']) {
    const r = bench(script, '--help')
    t.equal(r.code, 0, `${script} --help exits 0`)
    t.match(r.stdout, new RegExp(`^usage: node bench/${script.replace('.', '\\.')}`), `${script} prints its usage`)
  }
})

t.test("a flag npm took for itself (npm run profile --pod=foo, no --) is an error, not the script's default", async (t) => {
  const r = benchEnv('profile.mjs', { npm_lifecycle_event: 'profile', npm_config_pod: 'foo' })
  t.equal(r.code, 2)
  t.match(
    r.stderr,
    /^profile: --pod=foo went to npm, not to the script: put the script's flags after -- \(npm run profile -- --pod foo\)\n/,
  )
  const soak = benchEnv('soak.mjs', { npm_lifecycle_event: 'soak', npm_config_duration: '1m' })
  t.equal(soak.code, 2)
  t.match(soak.stderr, /^soak: --duration=1m went to npm/)
})

t.test('results go to an ignored folder unless --record (the committed one) or --out', async (t) => {
  const { resultsDir } = (await import('../../bench/flags.mjs' as string)) as {
    resultsDir(v: { record?: boolean; out?: string }, recorded: string, scratch: string): string
  }
  t.equal(resultsDir({}, 'bench/results/soak', 'bench/results/tmp/soak'), join(repoRoot, 'bench/results/tmp/soak'))
  t.equal(resultsDir({ record: true }, 'bench/results/soak', 'bench/results/tmp/soak'), join(repoRoot, 'bench/results/soak'))
  t.equal(resultsDir({ out: '/tmp/x' }, 'bench/results/soak', 'bench/results/tmp/soak'), '/tmp/x')
  const ignored = spawnSync('git', ['check-ignore', '-q', 'bench/results/tmp/soak/soak.json'], { cwd: repoRoot })
  t.equal(ignored.status, 0, 'git ignores the scratch folder')
  const cases: [string, string[], RegExp][] = [
    [
      'soak.mjs',
      ['--record', '--out', '/tmp/x'],
      /^soak: --record writes bench\/results\/soak-native; --out names another folder: give one of them\n/,
    ],
    ['decompose.mjs', ['--record', '--out', '/tmp/x'], /^decompose: --record writes bench\/results\/decompose; /],
    ['dns.mjs', ['--record', '--out', '/tmp/x'], /^dns: --record writes bench\/results\/dns; /],
    ['run.mjs', ['--quick', '--record'], /^bench: --record records a full run; --quick makes a partial one \(--out DIR keeps it\)\n/],
    ['run.mjs', ['--only', 'http', '--record'], /^bench: --record records a full run; --only makes a partial one/],
  ]
  for (const [script, args, want] of cases) {
    const r = bench(script, ...args)
    t.equal(r.code, 2, `${script} ${args.join(' ')}: exit 2`)
    t.match(r.stderr, want, `${script} ${args.join(' ')}: says why`)
  }
  t.match(bench('soak.mjs', '--help').stdout, /--record writes the committed bench\/results\/soak/, 'the usage says where results go')
})
