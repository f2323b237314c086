// lab status: what runs where, and how many packets each capture rule has caught.
import { keyCounters, parseStatsJson, type KeyCounters } from '../admin/key-counters.js'
import { containerLines } from './docker.js'
import { execIn, netnsExists } from '../sys/netns.js'
import { alive } from '../sys/exec.js'
import { uidOf } from './processes.js'
import type { LabState } from './state.js'
import {
  renderShortStatus,
  renderVerboseStatus,
  type LabStatus,
  type HboneStatus,
  type InpodSocket,
  type PodStatus,
  type ProcStatus,
  type RuleCounter,
} from './status-render.js'

export type { RuleCounter }

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

/**
 * The sidecar's key counters, read from its admin port inside the pod (127.0.0.1:15000 is pod-local); in
 * ambient mode the ztunnel's, from its admin in the node's namespace, for one pod.
 */
export async function sidecarCounters(ns: string, ztunnelPod?: string): Promise<KeyCounters | undefined> {
  const query = ztunnelPod ? `format=json&pod=${ztunnelPod}` : 'format=json'
  const r = await execIn(ns, ['curl', '-sf', '--max-time', '2', `http://127.0.0.1:15000/stats?${query}`], { allowFailure: true })
  if (r.code !== 0) return undefined
  try {
    return keyCounters(parseStatsJson(r.stdout))
  } catch {
    return undefined
  }
}

/** Each pod's identity and pooled HBONE sessions by name, from the ztunnel's /config_dump (empty: not answering, no HBONE). */
async function ztunnelHbone(ns: string): Promise<Map<string, HboneStatus>> {
  const byPod = new Map<string, HboneStatus>()
  const r = await execIn(ns, ['curl', '-sf', '--max-time', '2', 'http://127.0.0.1:15000/config_dump'], { allowFailure: true })
  if (r.code !== 0) return byPod
  try {
    const dump = JSON.parse(r.stdout) as { workloadState?: Record<string, { info?: { name?: string }; hbone?: HboneStatus }> }
    for (const w of Object.values(dump.workloadState ?? {})) if (w.info?.name && w.hbone) byPod.set(w.info.name, w.hbone)
  } catch {
    // a dump that is not JSON: no HBONE lines, as when the ztunnel does not answer
  }
  return byPod
}

/** The listening sockets in a pod, with the pid ss names as their owner (the ztunnel's, in ambient mode). */
export async function inpodSockets(ns: string): Promise<InpodSocket[]> {
  const r = await execIn(ns, ['ss', '-Htulnp'], { allowFailure: true })
  const out: InpodSocket[] = []
  for (const line of r.stdout.split('\n')) {
    const m = /^(tcp|udp)\s+\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s.*?pid=(\d+)/.exec(line)
    if (m && Number(m[3]) >= 15000 && Number(m[3]) < 15100)
      out.push({ proto: m[1] as 'tcp' | 'udp', address: m[2]!, port: Number(m[3]), pid: Number(m[4]) })
  }
  return out.sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto))
}

/** The relay engine the sidecar says it runs (/server_info, --relay), or null when its admin port does not answer. */
export async function sidecarRelay(ns: string): Promise<string | null> {
  const r = await execIn(ns, ['curl', '-sf', '--max-time', '2', 'http://127.0.0.1:15000/server_info'], { allowFailure: true })
  if (r.code !== 0) return null
  try {
    const relay = (JSON.parse(r.stdout) as { command_line_options?: { relay?: unknown } }).command_line_options?.relay
    return typeof relay === 'string' ? relay : null
  } catch {
    return null
  }
}

function proc(pid: number | undefined): ProcStatus | null {
  if (!pid) return null
  const running = alive(pid)
  return { pid, alive: running, uid: running ? (uidOf(pid) ?? null) : null }
}

/** Everything `lab status` shows, gathered once; rendered short, --verbose or --json (status-render.ts). */
export async function collectStatus(state: LabState | undefined, lab: string): Promise<LabStatus> {
  if (!state) return { lab, up: false }
  const mode = state.mode ?? 'REDIRECT'
  const pods: PodStatus[] = []
  /** ambient mode: the ztunnel's /config_dump, read once for every pod */
  let hbone: Map<string, HboneStatus> | undefined
  for (const [name, pod] of Object.entries(state.pods)) {
    const present = netnsExists(pod.ns)
    const p: PodStatus = {
      name,
      ns: pod.ns,
      nsMissing: !present,
      ip: pod.ip,
      ip6: pod.ip6,
      app: proc(pod.pids.app),
      sidecar: pod.sidecar ? proc(pod.pids.sidecar) : null,
      hasSidecar: pod.sidecar,
    }
    if (state.ambient && pod.sidecar && present) {
      p.counters = (await sidecarCounters(state.bridgeNs, name)) ?? null
      hbone ??= await ztunnelHbone(state.bridgeNs)
      p.hbone = hbone.get(name) ?? null
      p.inpodSockets = await inpodSockets(pod.ns)
      p.rules = await ruleCounters(pod.ns)
    } else if (pod.sidecar && present) {
      p.counters = (await sidecarCounters(pod.ns)) ?? null
      p.relay = await sidecarRelay(pod.ns)
      if (mode === 'TPROXY') p.routing = await tproxyRouting(pod.ns)
      p.rules = await ruleCounters(pod.ns)
    }
    pods.push(p)
  }
  const out: LabStatus = {
    lab,
    up: true,
    complete: state.complete,
    createdAt: state.createdAt,
    rules: state.rules,
    mode,
    relay: state.relay ?? 'node',
    pods,
  }
  if (state.dns) {
    const capture = state.rules === 'legacy' ? "on (the published listing's layout)" : state.dnsCapture ? 'on (--dns-capture)' : 'off'
    out.dns = { ns: state.dns.ns, address: '198.18.0.53', dnsmasq: proc(state.dns.pid), capture }
  }
  if (state.docker) out.containers = await containerLines(lab)
  if (state.ambient) out.ambient = { node: state.bridgeNs, ztunnel: proc(state.ambient.ztunnel), agent: proc(state.ambient.agent) }
  return out
}

/** width: the reader's terminal (src/text/wrap.ts) */
export async function renderStatus(state: LabState | undefined, lab: string, verbose: boolean, width: number): Promise<string> {
  const status = await collectStatus(state, lab)
  return verbose ? renderVerboseStatus(status, width) : renderShortStatus(status, width)
}
