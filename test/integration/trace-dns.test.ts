// `trace --dns` on a real lab with the seed listing's rules: the hops and rules the issue names, the
// zones in conntrack, the zone probe captured with the zones, and bypassing the sidecar without them.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import type { DnsTraceReport } from '../../src/trace/dns/report.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 180_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const rulesOf = (r: DnsTraceReport['lookup'], role: string) =>
  r.hops
    .filter((h) => h.role === role)
    .flatMap((h) => h.hits.map((x) => x.iptables ?? ''))
    .join('\n')

t.test('trace --dns names every hop, the zones, and the bypass without them', rootOnly(), async (t) => {
  const lab = `slttd${process.pid % 10000}`
  t.teardown(async () => {
    await cli(['lab', 'down', '--lab', lab])
    await cli(['lab', 'down', '--lab', `${lab}-nz`])
  })
  t.equal((await cli(['lab', 'up', '--lab', lab, '--compat', 'legacy'])).code, 0)
  const dir = mkdtempSync(join(tmpdir(), 'slt-dns-trace-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const svg = join(dir, 'dns.svg')
  const r = await cli(['trace', '--dns', '--no-ct-zones', '--json', '--svg', svg, '--lab', lab])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as DnsTraceReport
  const lookup = report.lookup
  t.equal(lookup.answeredBy, 'sidecar forward')
  t.match(lookup.dig.answers, [{ name: 'db.lab.test.', data: '198.18.0.30' }])
  t.match(rulesOf(lookup, "app's query"), /-A OUTPUT -p udp -m udp --dport 53 -j CT --zone 2/)
  t.match(rulesOf(lookup, "app's query"), /-A OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053/)
  t.match(rulesOf(lookup, "sidecar's upstream query"), /--dport 53 -m owner --uid-owner 1337 -j CT --zone 1/)
  t.match(rulesOf(lookup, "sidecar's upstream query"), /-A OUTPUT -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j RETURN/)
  t.match(rulesOf(lookup, "the DNS server's reply to the sidecar"), /-A PREROUTING -p udp -m udp --sport 53 -j CT --zone 1/)
  t.match(rulesOf(lookup, "sidecar's answer to the app"), /--sport 15053 -m owner --uid-owner 1337 -j CT --zone 2/)
  t.same(lookup.conntrack.map((e) => e.zone).sort(), [1, 2], "conntrack: the app's flow in zone 2, the sidecar's in zone 1")

  t.ok(report.probe, 'the zone probe ran')
  t.equal(report.probe!.bypassed, false, 'with the zones the app query from the reused port is still redirected')
  t.equal(report.probe!.run.answeredBy, 'sidecar table')
  t.equal(report.probe!.run.dig.answers[0]?.ttl, 30)

  const nz = report.withoutZones!
  t.notOk(nz.error, nz.error ?? 'the throwaway lab ran')
  t.ok(
    nz.removed.some((l) => /CT --zone 1/.test(l)),
    'the variant removed the CT rules',
  )
  t.equal(nz.probe!.bypassed, true, 'without the zones the app query skipped the nat table and reached the DNS server')
  t.equal(nz.probe!.run.dig.answers[0]?.ttl, 10, "the DNS server's TTL, not the sidecar's")
  t.same(nz.probe!.run.sidecar, {}, "the sidecar's counters did not move")
  t.notMatch(rulesOf(nz.probe!.run, "app's query"), /REDIRECT/, 'no REDIRECT in its path')
  t.equal(report.answer.reproduced, true)
  t.match(report.answer.answer, /bypassed \(istio\/istio#33469/)
  t.ok(existsSync(svg) && /<svg/.test(readFileSync(svg, 'utf8')), 'the SVG was written')
  t.same(await listNetns(`${lab}-nz-`), [], 'the throwaway lab is gone')

  const text = await cli(['trace', '--dns', 'reviews', '--lab', lab])
  t.equal(text.code, 0)
  t.match(text.stdout, /answered by: sidecar table/)
  t.match(text.stdout, /\[output\] app's query: UDP 198\.18\.0\.10:\d+ -> 198\.18\.0\.53:53/)
  t.match(text.stdout, /^Q: Why the conntrack zones/m)
})

t.test('trace --dns refuses a lab without DNS capture, naming the fix', rootOnly(), async (t) => {
  const lab = `slttn${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  t.equal((await cli(['lab', 'up', '--lab', lab])).code, 0)
  const r = await cli(['trace', '--dns', '--lab', lab])
  t.not(r.code, 0)
  t.match(r.stderr, /does not capture DNS: bring it up with --compat legacy or --dns-capture/)
})
