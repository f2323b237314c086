// A report built from the captured output of a real `sidecar-lab trace` run (test/fixtures/trace/):
// the pods' `nft -a monitor` text, access log lines, nat listings and conntrack tables.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { iptablesByHandle, parseAccessLine, parseConntrack } from '../../src/trace/evidence.js'
import { buildReport, type TraceReport } from '../../src/trace/report.js'

const dir = fileURLToPath(new URL('../fixtures/trace/', import.meta.url))
export const fixture = (name: string) => readFileSync(dir + name, 'utf8')
export const pods = ['productpage', 'reviews'] as const

export function fixtureReport(): TraceReport {
  const iptables = new Map<string, string>()
  for (const p of pods) {
    for (const [h, rule] of iptablesByHandle(fixture(`${p}.nft-nat.txt`), fixture(`${p}.iptables-nat.txt`))) iptables.set(`${p} ip nat ${h}`, rule)
  }
  const access = pods.flatMap((p) => fixture(`${p}.access.log`).split('\n').flatMap((l) => parseAccessLine(p, l) ?? []))
  return buildReport({
    lab: 'slt-dev',
    request: { from: 'productpage', to: 'reviews', url: 'http://198.18.0.20:9080/', client: '198.18.0.10:35784', server: '198.18.0.20:9080', status: 'HTTP 200' },
    raw: Object.fromEntries(pods.map((p) => [p, fixture(`${p}.nft-monitor.txt`)])),
    access, iptables,
    conntrack: pods.flatMap((p) => parseConntrack(p, fixture(`${p}.conntrack.txt`))),
  })
}
