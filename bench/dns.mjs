// DNS benchmark: queries/s and latency (p50/p90/p99) of the sidecar's DNS proxy answering from its table
// and forwarding, against the lab's DNS server (dnsmasq) queried directly. Builds its own lab with DNS
// capture (the seed listing's rules), runs each case ROUNDS times interleaved, removes the lab.
// usage: node bench/dns.mjs [--rounds 3] [--count 20000] [--concurrency 16] [--lab slb-dns] [--record | --out DIR]
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchFlags, flags, resultFlags, resultsDir } from './flags.mjs'
import { median } from './stats.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const usage =
  'usage: node bench/dns.mjs [--rounds 3] [--count 20000] [--concurrency 16] [--lab slb-dns] [--record | --out DIR]\n' +
  'Results go to bench/results/tmp/dns (not committed); --record writes the committed bench/results/dns.\n'
const values = benchFlags(
  'dns',
  {
    rounds: { type: 'string' },
    count: { type: 'string' },
    concurrency: { type: 'string' },
    lab: { type: 'string' },
    ...resultFlags,
  },
  usage,
  (v) => ({
    rounds: flags.integer('rounds', v.rounds, 3, 1, 20),
    count: String(flags.integer('count', v.count, 20000, 1, 10_000_000)),
    concurrency: String(flags.integer('concurrency', v.concurrency, 16, 1, 1024)),
    lab: v.lab ?? 'slb-dns',
    out: resultsDir(v, 'bench/results/dns', 'bench/results/tmp/dns'),
  }),
)
const cli = (/** @type {string[]} */ ...args) =>
  execFileSync('node', [join(root, 'dist/cli.js'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
const client = join(root, 'bench/apps/dns-client.mjs')

// productpage is captured (its queries to 198.18.0.53 go to its sidecar); ratings has no sidecar, so its
// queries reach the lab's DNS server directly over the same bridge.
const cases = [
  { key: 'sidecar-table', pod: 'productpage', name: 'reviews.default.svc.cluster.local', label: 'sidecar, from its table' },
  { key: 'sidecar-forward', pod: 'productpage', name: 'db.lab.test', label: 'sidecar, forwarded to the lab DNS server' },
  { key: 'direct', pod: 'ratings', name: 'db.lab.test', label: 'lab DNS server (dnsmasq) directly' },
]

let stopping = false
process.on('SIGINT', () => (stopping = true))
cli('lab', 'up', '--lab', values.lab, '--compat', 'legacy')
/** @type {any[]} */
const runs = []
try {
  for (let round = 1; round <= values.rounds && !stopping; round++) {
    for (const c of cases) {
      const out = cli(
        'lab',
        'exec',
        c.pod,
        '--lab',
        values.lab,
        '--',
        'node',
        client,
        '198.18.0.53',
        c.name,
        values.count,
        values.concurrency,
        '20',
      )
      const r = JSON.parse(out.trim().split('\n').at(-1) ?? '{}')
      runs.push({ round, case: c.key, ...r })
      process.stderr.write(
        `round ${round} ${c.key}: ${Math.round(r.qps)} q/s p50 ${r.p50.toFixed(3)} ms p99 ${r.p99.toFixed(3)} ms lost ${r.lost}\n`,
      )
    }
  }
} finally {
  cli('lab', 'down', '--lab', values.lab)
}
const rows = cases.map((c) => {
  const mine = runs.filter((r) => r.case === c.key)
  return {
    case: c.key,
    label: c.label,
    name: c.name,
    qps: median(mine.map((r) => r.qps)),
    p50: median(mine.map((r) => r.p50)),
    p90: median(mine.map((r) => r.p90)),
    p99: median(mine.map((r) => r.p99)),
    lost: mine.reduce((n, r) => n + r.lost, 0),
    rounds: mine.length,
  }
})
const md = [
  `DNS, ${values.rounds} interleaved rounds of ${values.count} UDP queries with ${values.concurrency} in flight (median of rounds; \`node bench/dns.mjs\`):`,
  '',
  '| case | name | queries/s | p50 (ms) | p90 (ms) | p99 (ms) | lost |',
  '|---|---|--:|--:|--:|--:|--:|',
  ...rows.map(
    (r) =>
      `| ${r.label} | ${r.name} | ${Math.round(r.qps).toLocaleString('en')} | ${r.p50.toFixed(3)} | ${r.p90.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.lost} |`,
  ),
  '',
].join('\n')
mkdirSync(values.out, { recursive: true })
writeFileSync(
  join(values.out, 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), options: values, runs, rows }, null, 2) + '\n',
)
writeFileSync(join(values.out, 'latest.md'), md)
process.stdout.write(md)
