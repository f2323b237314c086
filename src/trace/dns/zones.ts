// Why the conntrack zones (istio/istio#33469, fixed by the zones in #33572): the app's query is sent from
// the very source port the sidecar's own upstream query to the same server just used, so both have the
// same 5-tuple. With the zones, the app's flow (zone 2) and the sidecar's (zone 1) are two conntrack
// entries, and the app's query is NATed to 15053 as usual. Without them, the app's packet matches the
// sidecar's entry, is not a flow's first packet, skips the nat table, and reaches the DNS server directly.
// The case is built on purpose: dig binds the port the sidecar just used (its socket is closed by then,
// and conntrack keeps the entry for 30 s).
import { randomInt } from 'node:crypto'
import { TraceError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { outsideName, serviceNamespace } from '../../lab/dns.js'
import { down, up } from '../../lab/lifecycle.js'
import { execIn } from '../../sys/netns.js'
import type { LabState } from '../../lab/state.js'
import { podNamespace, tracedLookup, type DnsRun } from './run.js'

/** In the sidecar's table, so the sidecar never forwards it: the DNS server seeing it proves a bypass. */
export const probeName = `reviews.${serviceNamespace}.svc.cluster.local`

export interface ZoneProbe {
  /** the sidecar's upstream source port the app's query reused */
  port: number
  run: DnsRun
  bypassed: boolean
}

export interface WithoutZones {
  lab: string
  /** the raw-table rules the variant removed (iptables -S form) */
  removed: string[]
  lookup: DnsRun
  probe: ZoneProbe | null
  error?: string
}

export function appPort(): number {
  return randomInt(20000, 30000)
}

/** The lookup `run` forwarded, or a fresh forwarded one: either way a port the sidecar just used upstream. */
async function upstreamPort(state: LabState, run: DnsRun, signal?: AbortSignal): Promise<number | undefined> {
  if (run.sidecarUpstreamPort) return run.sidecarUpstreamPort
  const forwarded = await tracedLookup(state, outsideName.name, appPort(), signal)
  return forwarded.sidecarUpstreamPort
}

export async function zoneProbe(state: LabState, run: DnsRun, signal?: AbortSignal): Promise<ZoneProbe | null> {
  const port = await upstreamPort(state, run, signal)
  if (!port) return null
  const probe = await tracedLookup(state, probeName, port, signal)
  return { port, run: probe, bypassed: probe.answeredBy.startsWith('DNS server') }
}

/** A name for the throwaway lab: the user's lab name plus -nz, within the 24 characters a lab name has. */
export function throwawayLab(lab: string): string {
  return `${lab.slice(0, 21)}-nz`
}

/** The same lab layout in a throwaway lab, the raw table's CT rules removed in productpage, the same two lookups. */
export async function withoutZones(state: LabState, name: string, log: Logger, signal?: AbortSignal): Promise<WithoutZones> {
  const lab = throwawayLab(state.lab)
  if (lab === state.lab) throw new TraceError(`lab ${state.lab} looks like a throwaway lab itself; trace another`)
  try {
    const { state: nz } = await up({ lab, rules: state.rules, ...(state.dnsCapture ? { dnsCapture: true } : {}), log })
    const { ns } = podNamespace(nz)
    const save = await execIn(ns, ['iptables', '-t', 'raw', '-S'])
    const removed = save.stdout.split('\n').filter((l) => l.startsWith('-A '))
    await execIn(ns, ['iptables', '-t', 'raw', '-F'])
    const lookup = await tracedLookup(nz, name, appPort(), signal)
    const probe = await zoneProbe(nz, lookup, signal)
    return { lab, removed, lookup, probe }
  } finally {
    await down(lab, log)
  }
}
