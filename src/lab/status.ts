// lab status: what runs where, and how many packets each capture rule has caught.
import { execIn, netnsExists } from './netns.js'
import { alive, uidOf } from './processes.js'
import type { LabState } from './state.js'

export interface RuleCounter {
  table: string
  packets: number
  bytes: number
  rule: string
}

/** Packet counters of the pod's ISTIO rules (and the jumps into them), from iptables-save -c. */
export async function ruleCounters(ns: string): Promise<RuleCounter[]> {
  const out: RuleCounter[] = []
  for (const table of ['raw', 'nat', 'mangle']) {
    const r = await execIn(ns, ['iptables-save', '-c', '-t', table], { allowFailure: true })
    for (const line of r.stdout.split('\n')) {
      const m = /^\[(\d+):(\d+)\] (-A .*)$/.exec(line)
      if (m && /ISTIO|CT --zone|15053/.test(m[3]!)) out.push({ table, packets: Number(m[1]), bytes: Number(m[2]), rule: m[3]! })
    }
  }
  return out
}

function proc(pid: number | undefined): string {
  if (!pid) return '-'
  return alive(pid) ? `pid ${pid} uid ${uidOf(pid) ?? '?'}` : `pid ${pid} (exited)`
}

export async function renderStatus(state: LabState | undefined, lab: string): Promise<string> {
  if (!state) return `lab ${lab} is down (no state in /run/sidecar-lab/${lab}); 'sidecar-lab lab up' builds it\n`
  const lines = [`lab ${lab}: ${state.complete ? 'up' : 'INCOMPLETE (run lab down, then lab up)'} since ${state.createdAt}, rules: ${state.rules}`, '']
  const rows = [['POD', 'NAMESPACE', 'IPv4', 'IPv6', 'APP', 'SIDECAR']]
  for (const [name, pod] of Object.entries(state.pods)) {
    const ns = netnsExists(pod.ns) ? pod.ns : `${pod.ns} (missing)`
    rows.push([name, ns, pod.ip, pod.ip6, proc(pod.pids.app), pod.sidecar ? proc(pod.pids.sidecar) : 'none'])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
  for (const [name, pod] of Object.entries(state.pods)) {
    if (!pod.sidecar || !netnsExists(pod.ns)) continue
    lines.push('', `${name}: capture rules (packets caught)`)
    for (const c of await ruleCounters(pod.ns)) lines.push(`  ${String(c.packets).padStart(8)}  ${c.table.padEnd(6)} ${c.rule}`)
  }
  return lines.join('\n') + '\n'
}
