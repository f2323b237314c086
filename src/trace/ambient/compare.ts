// trace --compare: the same request traced in a sidecar lab and in an ambient lab, counted side by side.
// Only the request's own chain is counted (the caller's app to the called app); the called pod's own call
// (reviews -> ratings) is left out, because it differs with ratings' place in each mode, not with the mode.
import type { TraceReport } from '../capture/report.js'
import { wrapText, defaultWidth } from '../../text/wrap.js'
import type { AmbientReport } from './report.js'

export interface Counts {
  lab: string
  mode: 'sidecar' | 'ambient'
  status: string
  /** the processes whose sockets the request's bytes pass through, each named */
  processes: string[]
  connections: number
  /** chain rules and chain policies the connections' SYNs and SYN-ACKs hit, as the kernel traced them */
  rules: number
  natRewrites: number
  /** accepts by a proxy: each a user-space relay between two connections */
  userSpaceHops: number
}

/** The connections from the app's up to (not including) the called pod's own call. */
function chainLength(connections: Array<{ role: string; index: number }>): number {
  const own = connections.findIndex((c, i) => i > 0 && c.role === 'app')
  return own === -1 ? connections.length : own
}

export function sidecarCounts(r: TraceReport): Counts {
  const n = chainLength(r.connections)
  const chain = r.connections.slice(0, n)
  const steps = r.steps.filter((s) => s.connection < n)
  const proxies = [...new Set(chain.filter((c) => c.role !== 'app').map((c) => `sidecar in ${c.pod}`))]
  return {
    lab: r.lab,
    mode: 'sidecar',
    status: r.request.status,
    processes: ['curl', ...proxies, `app in ${r.request.to}`],
    connections: n,
    rules: steps.filter((s) => s.kind === 'netfilter' && s.chain !== null).length,
    natRewrites: steps.filter((s) => s.rewritten !== null).length,
    userSpaceHops: steps.filter((s) => s.kind === 'sidecar').length,
  }
}

export function ambientCounts(r: AmbientReport): Counts {
  const n = chainLength(r.connections)
  const chain = r.connections.slice(0, n)
  const steps = r.steps.filter((s) => s.connection < n)
  const proxies = [...new Set(chain.filter((c) => c.owner.process === 'ztunnel').map((c) => `ztunnel (pid ${c.owner.pid ?? '?'})`))]
  return {
    lab: r.lab,
    mode: 'ambient',
    status: r.request.status,
    processes: ['curl', ...proxies, `app in ${r.request.to}`],
    connections: n,
    // the REDIRECT shown "not taken" is no hit of the kernel's: it is left out
    rules: steps.filter((s) => s.kind === 'netfilter' && s.chain !== null && s.verdict !== 'not taken').length,
    natRewrites: steps.filter((s) => s.rewritten !== null).length,
    userSpaceHops: steps.filter((s) => s.kind === 'ztunnel').length,
  }
}

export function renderComparison(from: string, to: string, sidecar: Counts, ambient: Counts, columns = defaultWidth): string {
  const rows: Array<[string, (c: Counts) => number]> = [
    ['processes in the path', (c) => c.processes.length],
    ['TCP connections', (c) => c.connections],
    ['rules walked', (c) => c.rules],
    ['NAT rewrites', (c) => c.natRewrites],
    ['user-space hops', (c) => c.userSpaceHops],
  ]
  const head = (c: Counts) => `${c.mode} (lab ${c.lab})`
  const w = [24, Math.max(18, head(sidecar).length + 2), Math.max(18, head(ambient).length + 2)]
  const line = (a: string, b: string, c: string) => `  ${a.padEnd(w[0]!)}${b.padEnd(w[1]!)}${c}`.trimEnd()
  const out = [
    `One request, ${from} -> ${to}, traced in both modes; the called pod's own call is left out.`,
    `sidecar: ${sidecar.status}; ambient: ${ambient.status}.`,
    '',
    line('', head(sidecar), head(ambient)),
    ...rows.map(([label, f]) => line(label, String(f(sidecar)), String(f(ambient)))),
    '',
    `The processes: in sidecar mode ${sidecar.processes.join(', ')}; in ambient mode ${ambient.processes.join(', ')}.`,
    "Rules walked counts every chain rule and chain policy that the connections' SYNs and SYN-ACKs hit in the " +
      "kernel's trace; NAT rewrites, the SYNs a nat rule rewrote; user-space hops, the connections a proxy " +
      'accepted and relayed into a new one.',
  ]
  return wrapText(out.join('\n') + '\n', columns)
}
