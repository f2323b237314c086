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
  /** ambient mode: the listening sockets in the pod's namespace (a process outside it owns them) */
  inpodSockets?: InpodSocket[]
  /** ambient mode with HBONE: the pod's mesh identity and its pooled HBONE sessions (the ztunnel's /config_dump) */
  hbone?: HboneStatus | null
}

export interface HboneStatus {
  identity: string
  sessions: { destination: string; via: string; tunnels: number; open: boolean }[]
  /** on its 15008 since the ztunnel started: TLS sessions accepted, tunnels opened */
  inbound?: { sessions: number; tunnels: number }
}

export interface InpodSocket {
  proto: 'tcp' | 'udp'
  address: string
  port: number
  pid: number
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
      /** lab up --ambient: the ztunnel in the node's namespace */
      ambient?: { node: string; ztunnel: ProcStatus | null; agent?: ProcStatus | null }
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
  const form = s.ambient ? 'ambient mode (no sidecars)' : `rules: ${s.rules}, mode: ${s.mode}`
  const lines: Line[] = [`lab ${s.lab}: ${state} since ${s.createdAt}, ${form}, relay: ${s.relay}`, '']
  const rows = [['POD', 'NETWORK NAMESPACE', 'IPv4', 'IPv6', 'APP PID', 'SIDECAR PID']]
  for (const p of s.pods) rows.push([p.name, p.nsMissing ? `${p.ns} (missing)` : p.ns, p.ip, p.ip6, proc(p.app), sidecarCell(s, p)])
  // a table keeps its columns aligned: its rows are not wrapped (a narrow terminal folds them)
  for (const row of table(rows)) lines.push({ row })
  if (s.dns)
    lines.push(
      '',
      `dns: ${s.dns.ns} ${s.dns.address}, dnsmasq pid ${proc(s.dns.dnsmasq)}; DNS capture in the sidecar pods: ${s.dns.capture}`,
    )
  if (s.containers) lines.push('', ...s.containers.map((row) => ({ row })))
  if (s.ambient) {
    const mesh = s.pods.filter((p) => p.hasSidecar).map((p) => p.name)
    lines.push(
      '',
      `ztunnel: pid ${proc(s.ambient.ztunnel)} in ${s.ambient.node} (the node), serving ${mesh.join(' and ')}; the node agent ` +
        `that handed them over (istio-cni's ZDS side) is pid ${proc(s.ambient.agent ?? null)}`,
    )
  }
  return lines
}

function sidecarCell(s: UpStatus, p: PodStatus): string {
  if (s.ambient) return p.hasSidecar ? 'none (ztunnel)' : 'none (not in mesh)'
  return p.hasSidecar ? proc(p.sidecar) : 'none'
}

/** Ambient mode: the ports in the pod and who owns them, as `ss` in the pod sees them. */
function inpodLines(s: UpStatus, p: PodStatus): string[] {
  const socks = p.inpodSockets ?? []
  if (socks.length === 0) return [`${p.name}: no in-pod listener (is the ztunnel serving this pod?)`]
  const ztunnel = s.ambient?.ztunnel?.pid
  const owners = [...new Set(socks.map((x) => x.pid))]
  const ports = [
    ...new Set(socks.map((x) => `${x.port}${socks.some((y) => y.port === x.port && y.proto !== x.proto) ? '' : `/${x.proto}`}`)),
  ]
  const who = owners.length === 1 && owners[0] === ztunnel ? `the ztunnel (pid ${ztunnel})` : `pid ${owners.join(', ')}`
  return [
    `${p.name}: listening on ${ports.join(', ')} inside the pod; \`ss\` in the pod names their owner as ${who}, a process that runs outside the pod's namespace`,
    ...hboneLines(p),
  ]
}

/** Ambient mode with HBONE: whose certificate the pod's tunnels present, and the sessions pooled for them. */
function hboneLines(p: PodStatus): string[] {
  if (!p.hbone) return []
  const { identity, sessions } = p.hbone
  const pooled = sessions.map(
    (x) =>
      `${x.via} (${x.destination}${x.open ? '' : ', handshake under way'}), ${x.tunnels} ${x.tunnels === 1 ? 'tunnel' : 'tunnels'} on it now`,
  )
  const inbound = p.hbone.inbound
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`
  return [
    `${p.name}: identity ${identity}; HBONE sessions pooled: ${sessions.length === 0 ? 'none (none opened, or all released after 5 minutes unused)' : pooled.join('; ')}` +
      (inbound ? `; on its 15008 so far: ${count(inbound.sessions, 'session')} accepted, ${count(inbound.tunnels, 'tunnel')}` : ''),
  ]
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
    const proxyName = s.ambient ? 'ztunnel for this pod' : `sidecar${engine}`
    if (s.ambient) lines.push('', ...inpodLines(s, p))
    lines.push(
      ...(s.ambient ? [] : ['']),
      `${p.name}: ${proxyName} ${p.counters ? `listening on ${listeners || 'nothing'}` : 'admin port not answering'}`,
    )
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
    if (s.ambient) lines.push('', ...inpodLines(s, p))
    const engine = p.relay ? `${p.relay} relay, ` : ''
    const where = s.ambient
      ? `ztunnel counters for this pod (admin 127.0.0.1:15000 in ${s.ambient.node})`
      : `sidecar counters (${engine}admin 127.0.0.1:15000 in the pod)`
    lines.push('', `${p.name}: ${where}`, ...counterLines(p.counters))
    if (p.routing) lines.push('', `${p.name}: TPROXY routing (packets marked 1337 are delivered locally)`, ...p.routing)
    lines.push('', `${p.name}: capture rules (packets caught)`, ...(p.rules ?? []).flatMap((c) => ruleLines(c, width)))
  }
  return finish(lines, width)
}
