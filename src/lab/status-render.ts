// lab status as text: short by default (one line per pod, sidecar, DNS server and capture rule that
// caught packets), --verbose with every counter of both families, --json for scripts (the LabStatus as
// is). Renders only: src/lab/status.ts gathers.
import { cliCommand } from '../invocation.js'
import type { KeyCounters } from '../admin/key-counters.js'
import { defaultWidth, wrapHanging, wrapLine } from '../text/wrap.js'

export interface RuleCounter {
  table: string
  packets: number
  bytes: number
  rule: string
}

export interface ProcStatus {
  pid: number
  alive: boolean
  /** null: exited, or its uid could not be read */
  uid: number | null
}

export interface PodStatus {
  name: string
  ns: string
  nsMissing: boolean
  ip: string
  ip6: string
  app: ProcStatus | null
  /** null: no sidecar process recorded */
  sidecar: ProcStatus | null
  hasSidecar: boolean
  /** the sidecar's admin counters; null: the admin port did not answer; absent: not asked */
  counters?: KeyCounters | null
  /** the relay engine the running sidecar reports (/server_info); null: the admin port did not answer */
  relay?: string | null
  /** TPROXY mode: the policy routing lines */
  routing?: string[]
  /** the ISTIO rules' packet counters, IPv4 then IPv6 */
  rules?: RuleCounter[]
}

export type LabStatus =
  | { lab: string; up: false }
  | {
      lab: string
      up: true
      complete: boolean
      createdAt: string
      rules: 'istio' | 'legacy'
      mode: 'REDIRECT' | 'TPROXY'
      /** the engine lab up started the sidecars with (the state's; each pod's relay is what its sidecar says) */
      relay: string
      pods: PodStatus[]
      dns?: { ns: string; address: string; dnsmasq: ProcStatus | null; capture: string }
      /** lab up --docker: the containers, as lines */
      containers?: string[]
    }

type UpStatus = Extract<LabStatus, { up: true }>

function proc(p: ProcStatus | null): string {
  if (!p) return '-'
  return p.alive ? `${p.pid} (uid ${p.uid ?? '?'})` : `${p.pid} (exited)`
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  )
}

/** A line of prose (wrapped to the width) or a table row (kept whole, so its columns stay aligned). */
type Line = string | { row: string }

function finish(lines: Line[], width: number): string {
  return lines.flatMap((l) => (typeof l === 'string' ? wrapLine(l, width) : [l.row])).join('\n') + '\n'
}

function head(s: UpStatus): Line[] {
  const state = s.complete ? 'up' : 'INCOMPLETE (run lab down, then lab up)'
  const lines: Line[] = [`lab ${s.lab}: ${state} since ${s.createdAt}, rules: ${s.rules}, mode: ${s.mode}, relay: ${s.relay}`, '']
  const rows = [['POD', 'NETWORK NAMESPACE', 'IPv4', 'IPv6', 'APP PID', 'SIDECAR PID']]
  for (const p of s.pods)
    rows.push([p.name, p.nsMissing ? `${p.ns} (missing)` : p.ns, p.ip, p.ip6, proc(p.app), p.hasSidecar ? proc(p.sidecar) : 'none'])
  // a table keeps its columns aligned: its rows are not wrapped (a narrow terminal folds them)
  for (const row of table(rows)) lines.push({ row })
  if (s.dns)
    lines.push(
      '',
      `dns: ${s.dns.ns} ${s.dns.address}, dnsmasq pid ${proc(s.dns.dnsmasq)}; DNS capture in the sidecar pods: ${s.dns.capture}`,
    )
  if (s.containers) lines.push('', ...s.containers.map((row) => ({ row })))
  return lines
}

function down(lab: string): string {
  return `lab ${lab} is down (no state in /run/sidecar-lab/${lab}); '${cliCommand('lab up', lab)}' builds it\n`
}

/** a long rule continues under the rule's start, so the counter column stays clear */
const ruleLines = (c: RuleCounter, width: number) =>
  wrapHanging(`  ${String(c.packets).padStart(8)}  ${c.table.padEnd(10)} `, c.rule, width)

/** One line per sidecar (its listeners' ports and connections) and per capture rule that caught packets. */
export function renderShortStatus(s: LabStatus, width = defaultWidth): string {
  if (!s.up) return down(s.lab)
  const lines = head(s)
  for (const p of s.pods) {
    if (p.counters === undefined) continue
    const listeners = p.counters
      ? Object.values(p.counters.listeners)
          .sort((a, b) => a.port - b.port)
          .map((l) => `${l.port} (${l.cxTotal} ${l.cxTotal === 1 ? 'connection' : 'connections'}, ${l.cxActive} active)`)
          .join(', ')
      : ''
    const engine = p.relay ? ` (${p.relay} relay)` : ''
    lines.push('', `${p.name}: sidecar${engine} ${p.counters ? `listening on ${listeners || 'nothing'}` : 'admin port not answering'}`)
    const caught = (p.rules ?? []).filter((c) => c.packets > 0)
    lines.push(`${p.name}: capture rules (packets caught; ${(p.rules ?? []).length - caught.length} more caught none)`)
    lines.push(...(caught.length ? caught.flatMap((c) => ruleLines(c, width)) : ['  none yet']))
  }
  lines.push('', `every counter: ${cliCommand('lab status --verbose', s.lab)}; for scripts: ${cliCommand('lab status --json', s.lab)}`)
  return finish(lines, width)
}

function counterLines(k: KeyCounters | null): string[] {
  if (!k) return ['  sidecar admin port not answering']
  const lines = Object.values(k.listeners)
    .sort((a, b) => a.port - b.port)
    .map(
      (l) =>
        `  listener ${l.port}: ${l.cxTotal} connections, ${l.cxActive} active, ${l.overflow} overflow, ${l.noFilterChainMatch} no filter chain`,
    )
  for (const [name, c] of Object.entries(k.clusters)) {
    lines.push(
      `  ${name}: ${c.cxTotal} upstream connections, ${c.cxActive} active, ${c.connectFail} failed, ${c.rxBytes} bytes in, ${c.txBytes} bytes out`,
    )
  }
  return lines
}

/** Every counter: the sidecars' listeners and clusters, TPROXY routing, every ISTIO rule of both families. */
export function renderVerboseStatus(s: LabStatus, width = defaultWidth): string {
  if (!s.up) return down(s.lab)
  const lines = head(s)
  for (const p of s.pods) {
    if (p.counters === undefined) continue
    const engine = p.relay ? `${p.relay} relay, ` : ''
    lines.push('', `${p.name}: sidecar counters (${engine}admin 127.0.0.1:15000 in the pod)`, ...counterLines(p.counters))
    if (p.routing) lines.push('', `${p.name}: TPROXY routing (packets marked 1337 are delivered locally)`, ...p.routing)
    lines.push('', `${p.name}: capture rules (packets caught)`, ...(p.rules ?? []).flatMap((c) => ruleLines(c, width)))
  }
  return finish(lines, width)
}
