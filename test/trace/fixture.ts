// A report built from the captured output of a real `sidecar-lab trace` run (test/fixtures/trace/):
// the pods' `nft -a monitor` text, access log lines, nat listings and conntrack tables.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { iptablesByHandle, parseAccessLine, parseConntrack } from '../../src/trace/capture/evidence.js'
import { buildReport, type TraceReport } from '../../src/trace/capture/report.js'

const base = fileURLToPath(new URL('../fixtures/', import.meta.url))
/**
 * trace/: productpage -> reviews only; trace-call/: a later run where reviews also calls ratings (Bookinfo's
 * chain); trace-nosidecar/: ratings (no sidecar) -> productpage, which calls reviews.
 */
export type FixtureSet = 'trace' | 'trace-call' | 'trace-nosidecar'
export const fixture = (name: string, set: FixtureSet = 'trace') => readFileSync(`${base}${set}/${name}`, 'utf8')
const runs: Record<FixtureSet, { lab: string; from: string; to: string; client: string; server: string }> = {
  trace: { lab: 'slt-dev', from: 'productpage', to: 'reviews', client: '198.18.0.10:35784', server: '198.18.0.20:9080' },
  'trace-call': { lab: 'slwk', from: 'productpage', to: 'reviews', client: '198.18.0.10:36400', server: '198.18.0.20:9080' },
  'trace-nosidecar': { lab: 'slwk', from: 'ratings', to: 'productpage', client: '198.18.0.30:54556', server: '198.18.0.10:9080' },
}
export const pods = ['productpage', 'reviews'] as const

export function fixtureReport(set: FixtureSet = 'trace'): TraceReport {
  const run = runs[set]
  const pods = [run.from, run.to]
  const iptables = new Map<string, string>()
  for (const p of pods) {
    for (const [h, rule] of iptablesByHandle(fixture(`${p}.nft-nat.txt`, set), fixture(`${p}.iptables-nat.txt`, set)))
      iptables.set(`${p} ip nat ${h}`, rule)
  }
  const access = pods.flatMap((p) =>
    fixture(`${p}.access.log`, set)
      .split('\n')
      .flatMap((l) => parseAccessLine(p, l) ?? []),
  )
  return buildReport({
    lab: run.lab,
    request: { from: run.from, to: run.to, url: `http://${run.server}/`, client: run.client, server: run.server, status: 'HTTP 200' },
    raw: Object.fromEntries(pods.map((p) => [p, fixture(`${p}.nft-monitor.txt`, set)])),
    access,
    iptables,
    conntrack: pods.flatMap((p) => parseConntrack(p, fixture(`${p}.conntrack.txt`, set))),
  })
}
