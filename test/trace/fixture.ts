// A report built from the captured output of a real `sidecar-lab trace` run (test/fixtures/trace/):
// the pods' `nft -a monitor` text, access log lines, nat listings and conntrack tables.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { iptablesByHandle, parseAccessLine, parseConntrack } from '../../src/trace/evidence.js'
import { buildReport, type TraceReport } from '../../src/trace/report.js'

const base = fileURLToPath(new URL('../fixtures/', import.meta.url))
/** trace/: productpage -> reviews only; trace-call/: a later run where reviews also calls ratings (Bookinfo's chain) */
export type FixtureSet = 'trace' | 'trace-call'
export const fixture = (name: string, set: FixtureSet = 'trace') => readFileSync(`${base}${set}/${name}`, 'utf8')
const clients: Record<FixtureSet, { lab: string; client: string }> = {
  trace: { lab: 'slt-dev', client: '198.18.0.10:35784' },
  'trace-call': { lab: 'slwk', client: '198.18.0.10:36400' },
}
export const pods = ['productpage', 'reviews'] as const

export function fixtureReport(set: FixtureSet = 'trace'): TraceReport {
  const iptables = new Map<string, string>()
  for (const p of pods) {
    for (const [h, rule] of iptablesByHandle(fixture(`${p}.nft-nat.txt`, set), fixture(`${p}.iptables-nat.txt`, set))) iptables.set(`${p} ip nat ${h}`, rule)
  }
  const access = pods.flatMap((p) => fixture(`${p}.access.log`, set).split('\n').flatMap((l) => parseAccessLine(p, l) ?? []))
  return buildReport({
    lab: clients[set].lab,
    request: { from: 'productpage', to: 'reviews', url: 'http://198.18.0.20:9080/', client: clients[set].client, server: '198.18.0.20:9080', status: 'HTTP 200' },
    raw: Object.fromEntries(pods.map((p) => [p, fixture(`${p}.nft-monitor.txt`, set)])),
    access, iptables,
    conntrack: pods.flatMap((p) => parseConntrack(p, fixture(`${p}.conntrack.txt`, set))),
  })
}
