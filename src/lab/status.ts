// lab status: what runs where, and how many packets each capture rule has caught.
import { keyCounters, parseStatsJson, type KeyCounters } from '../admin/key-counters.js'
import { containerLines } from './docker.js'
import { execIn, netnsExists } from '../sys/netns.js'
import { alive } from '../sys/exec.js'
import { uidOf } from './processes.js'
import type { LabState } from './state.js'

export interface RuleCounter {
  table: string
  packets: number
  bytes: number
  rule: string
}

/**
 * Packet counters of the pod's ISTIO rules (and the jumps into them), from iptables-save -c, then
 * ip6tables-save -c (their table is shown as 'ip6 nat' and so on).
 */
export async function ruleCounters(ns: string): Promise<RuleCounter[]> {
  const out: RuleCounter[] = []
  for (const [save, prefix] of [
    ['iptables-save', ''],
    ['ip6tables-save', 'ip6 '],
  ] as const) {
    for (const table of ['raw', 'nat', 'mangle']) {
      const r = await execIn(ns, [save, '-c', '-t', table], { allowFailure: true })
      for (const line of r.stdout.split('\n')) {
        const m = /^\[(\d+):(\d+)\] (-A .*)$/.exec(line)
        if (m && /ISTIO|CT --zone|15053/.test(m[3]!))
          out.push({ table: prefix + table, packets: Number(m[1]), bytes: Number(m[2]), rule: m[3]! })
      }
    }
  }
  return out
}

/**
 * TPROXY's policy routing in a pod, as `ip rule` and `ip route show table 133` print it, IPv4 then IPv6:
 * the marked packets' rule and the table whose default route is local.
 */
export async function tproxyRouting(ns: string): Promise<string[]> {
  const lines: string[] = []
  for (const family of ['-4', '-6']) {
    const rules = await execIn(ns, ['ip', family, 'rule', 'show'], { allowFailure: true })
    for (const l of rules.stdout.split('\n').filter((x) => /fwmark|lookup 133/.test(x))) lines.push(`  ip ${family} rule: ${l.trim()}`)
    const routes = await execIn(ns, ['ip', family, 'route', 'show', 'table', '133'], { allowFailure: true })
    for (const l of routes.stdout.split('\n').filter(Boolean)) lines.push(`  ip ${family} route table 133: ${l.trim()}`)
  }
  return lines.length ? lines : ['  none (no fwmark rule, table 133 empty)']
}

/** The sidecar's key counters, read from its admin port inside the pod (127.0.0.1:15000 is pod-local). */
export async function sidecarCounters(ns: string): Promise<KeyCounters | undefined> {
  const r = await execIn(ns, ['curl', '-sf', '--max-time', '2', 'http://127.0.0.1:15000/stats?format=json'], { allowFailure: true })
  if (r.code !== 0) return undefined
  try {
    return keyCounters(parseStatsJson(r.stdout))
  } catch {
    return undefined
  }
}

function renderCounters(k: KeyCounters | undefined): string[] {
  if (!k) return ['  sidecar admin port not answering']
  const lines = Object.entries(k.listeners)
    .sort(([, a], [, b]) => a.port - b.port)
    .map(
      ([, l]) =>
        `  listener ${l.port}: ${l.cxTotal} connections, ${l.cxActive} active, ${l.overflow} overflow, ${l.noFilterChainMatch} no filter chain`,
    )
  for (const [name, c] of Object.entries(k.clusters)) {
    lines.push(
      `  ${name}: ${c.cxTotal} upstream connections, ${c.cxActive} active, ${c.connectFail} failed, ${c.rxBytes} bytes in, ${c.txBytes} bytes out`,
    )
  }
  return lines
}

function proc(pid: number | undefined): string {
  if (!pid) return '-'
  return alive(pid) ? `pid ${pid} uid ${uidOf(pid) ?? '?'}` : `pid ${pid} (exited)`
}

export async function renderStatus(state: LabState | undefined, lab: string): Promise<string> {
  if (!state) return `lab ${lab} is down (no state in /run/sidecar-lab/${lab}); 'sidecar-lab lab up' builds it\n`
  const mode = state.mode ?? 'REDIRECT'
  const lines = [
    `lab ${lab}: ${state.complete ? 'up' : 'INCOMPLETE (run lab down, then lab up)'} since ${state.createdAt}, rules: ${state.rules}, mode: ${mode}`,
    '',
  ]
  const rows = [['POD', 'NAMESPACE', 'IPv4', 'IPv6', 'APP', 'SIDECAR']]
  for (const [name, pod] of Object.entries(state.pods)) {
    const ns = netnsExists(pod.ns) ? pod.ns : `${pod.ns} (missing)`
    rows.push([name, ns, pod.ip, pod.ip6, proc(pod.pids.app), pod.sidecar ? proc(pod.pids.sidecar) : 'none'])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const r of rows)
    lines.push(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
  if (state.dns) {
    const capture = state.rules === 'legacy' ? 'on (the seed listing)' : state.dnsCapture ? 'on (--dns-capture)' : 'off'
    lines.push('', `dns: ${state.dns.ns} 198.18.0.53, dnsmasq ${proc(state.dns.pid)}; DNS capture in the sidecar pods: ${capture}`)
  }
  if (state.docker) lines.push('', ...(await containerLines(lab)))
  for (const [name, pod] of Object.entries(state.pods)) {
    if (!pod.sidecar || !netnsExists(pod.ns)) continue
    lines.push('', `${name}: sidecar counters (admin 127.0.0.1:15000 in the pod)`, ...renderCounters(await sidecarCounters(pod.ns)))
    if (mode === 'TPROXY')
      lines.push('', `${name}: TPROXY routing (packets marked 1337 are delivered locally)`, ...(await tproxyRouting(pod.ns)))
    lines.push('', `${name}: capture rules (packets caught)`)
    for (const c of await ruleCounters(pod.ns)) lines.push(`  ${String(c.packets).padStart(8)}  ${c.table.padEnd(10)} ${c.rule}`)
  }
  return lines.join('\n') + '\n'
}
