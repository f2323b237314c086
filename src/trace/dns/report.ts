// `trace --dns`: the lookup, the zone probe in the user's lab and, with --no-ct-zones, the same in a
// throwaway lab without the raw table's CT rules; then the listing's open question answered from them.
import type { Logger } from '../../logger.js'
import { outsideName } from '../../lab/dns.js'
import { readState } from '../../lab/state.js'
import { TraceError } from '../../errors.js'
import { tracedLookup, type DnsRun } from './run.js'
import { appPort, probeName, withoutZones, zoneProbe, type WithoutZones, type ZoneProbe } from './zones.js'
import { cliCommand } from '../../invocation.js'

export interface DnsTraceReport {
  lab: string
  rules: string
  lookup: DnsRun
  probe: ZoneProbe | null
  withoutZones: WithoutZones | null
  answer: { question: string; answer: string; reproduced: boolean | null }
}

export interface DnsTraceOptions {
  lab: string
  name?: string
  noCtZones: boolean
  log: Logger
  signal?: AbortSignal
}

/** A short name is looked up as the search list's first expansion, as a pod's resolver would try it first. */
export function qualify(name: string): string {
  return name.includes('.') ? name : `${name}.default.svc.cluster.local`
}

export async function runDnsTrace(o: DnsTraceOptions): Promise<DnsTraceReport> {
  const state = readState(o.lab)
  if (!state?.complete)
    throw new TraceError(`lab ${o.lab} is not up: run '${cliCommand('lab up --compat legacy', o.lab)}' (or --dns-capture) first`)
  if (!state.dns)
    throw new TraceError(
      `lab ${o.lab} has no DNS server (built before DNS existed): run '${cliCommand('lab down', o.lab)}' and 'lab up' again`,
    )
  if (state.rules !== 'legacy' && !state.dnsCapture) {
    throw new TraceError(`lab ${o.lab} does not capture DNS: bring it up with --compat legacy or --dns-capture`)
  }
  const name = qualify(o.name ?? outsideName.name)
  const lookup = await tracedLookup(state, name, appPort(), o.signal)
  const probe = await zoneProbe(state, lookup, o.signal)
  let nz: WithoutZones | null = null
  if (o.noCtZones) {
    try {
      nz = await withoutZones(state, name, o.log, o.signal)
    } catch (err) {
      nz = { lab: '', removed: [], lookup, probe: null, error: (err as Error).message }
    }
  }
  return {
    lab: state.lab,
    rules: state.rules === 'legacy' ? "legacy (the published rule listing's layout)" : 'injector layout with --redirect-dns',
    lookup,
    probe,
    withoutZones: nz,
    answer: answer(probe, nz, state.lab),
  }
}

function ctLine(run: DnsRun, port: number): string {
  return (
    run.conntrack
      .filter((e) => e.original.sport === port)
      .map(
        (e) =>
          `zone ${e.zone}: ${e.original.src}:${e.original.sport} -> ${e.original.dst}:${e.original.dport}, reply from ${e.reply.src}:${e.reply.sport}`,
      )
      .join('; ') || 'none'
  )
}

function natHop(run: DnsRun): string {
  const hop = run.hops.find((h) => h.role === "app's query")
  if (!hop) return 'the trace saw no app query'
  const nat = hop.hits.find((h) => h.table === 'nat' && /redirect|REDIRECT/.test(`${h.rule} ${h.iptables}`))
  if (nat) return `step ${nat.step}: ${nat.iptables ?? nat.rule} rewrote it to ${hop.rewritten?.dst ?? '?'}`
  const last = hop.hits[hop.hits.length - 1]
  const where = !last
    ? 'its output hook'
    : last.step === hop.hits[0]!.step
      ? `step ${last.step}`
      : `steps ${hop.hits[0]!.step}-${last.step}`
  return `${where}: no nat chain ran, it left for ${hop.packet.dst} unchanged`
}

function describe(p: ZoneProbe): string {
  const r = p.run
  const got = r.dig.answers.map((a) => `${a.data} TTL ${a.ttl}`).join(', ') || r.dig.status
  const seen = r.serverQueries.filter((q) => q.port === p.port).map((q) => `${q.client}/${q.port} query[${q.type}] ${q.name}`)
  return (
    `the app's query for ${probeName} from ${r.client} (the port the sidecar's upstream query had just used): ${natHop(r)}; ` +
    `conntrack: ${ctLine(r, p.port)}; answer ${got} (${r.answeredBy}); ` +
    (seen.length
      ? `the DNS server logged ${seen.join(', ')}, a name the sidecar answers itself and never forwards`
      : 'the DNS server logged no query from that port')
  )
}

export function answer(probe: ZoneProbe | null, nz: WithoutZones | null, lab?: string): DnsTraceReport['answer'] {
  const question = "Why the conntrack zones (raw table: CT --zone 1 for the sidecar's upstream DNS, --zone 2 for the app's)?"
  const parts: string[] = []
  if (probe)
    parts.push(
      `With the zones: ${describe(probe)}. The app's flow and the sidecar's are two conntrack entries, so the app's query is a new flow and the nat table redirects it.`,
    )
  else parts.push('With the zones: the sidecar sent no upstream query, so there was no port to reuse.')
  let reproduced: boolean | null = null
  if (!nz) parts.push(`Without them: run '${cliCommand('trace --dns --no-ct-zones', lab)}' to see it in a throwaway lab.`)
  else if (nz.error) parts.push(`Without them: the throwaway lab failed: ${nz.error}.`)
  else if (!nz.probe) parts.push('Without them: the sidecar sent no upstream query in the throwaway lab; nothing to reuse.')
  else {
    reproduced = nz.probe.bypassed
    parts.push(`Without them (lab ${nz.lab}, ${nz.removed.length} raw-table rules removed): ${describe(nz.probe)}.`)
    parts.push(
      reproduced
        ? "The app's packet matched the sidecar's conntrack entry, was not a new flow, skipped the nat table and went straight to the DNS server: the sidecar was bypassed (istio/istio#33469; the zones are the fix, #33572)."
        : "The bypass did not happen on this kernel: the app's query was still redirected although the zones were gone.",
    )
  }
  return { question, answer: parts.join(' '), reproduced }
}
