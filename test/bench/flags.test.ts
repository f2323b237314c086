// The bench scripts parse their flags with src/flags, as every command does: a bad value names the flag and
// the accepted values, prints the usage and exits 2 before anything is built (no root needed to see it).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot } from '../helpers/pods.js'

function bench(script: string, ...args: string[]) {
  const r = spawnSync('node', [join(repoRoot, 'bench', script), ...args], { encoding: 'utf8', timeout: 30_000 })
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
