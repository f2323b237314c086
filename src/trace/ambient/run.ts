// One traced request in an ambient lab: the capture of capture/run.ts (trace tables and monitors in the two
// pods, curl as the app's user), with the ztunnel's access log in place of the sidecars' and the called
// pod's reply routing read afterwards.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { LabNotUpError, TraceError } from '../../errors.js'
import { netnsExists } from '../../sys/netns.js'
import { ztunnelAccessLog } from '../../lab/ambient.js'
import { podSpec } from '../../lab/scene.js'
import { readState, type LabState } from '../../lab/state.js'
import { endpointOf, formatEndpoint } from '../../net/address.js'
import { readConntrack, readIptablesRules } from '../capture/evidence.js'
import { armMonitors, TraceMonitor } from '../capture/monitor.js'
import { installTraceTable, removeTraceTable } from '../capture/nft-table.js'
import { sendRequest, type TraceOptions } from '../capture/run.js'
import { cliCommand } from '../../invocation.js'
import { parseZtunnelLog, readReplyRouting, type ZtunnelLine } from './evidence.js'
import { ambientPorts, buildAmbientReport, type AmbientReport } from './report.js'

function podNs(state: LabState, pod: string): string {
  const p = state.pods[pod]
  if (!p) throw new TraceError(`no pod '${pod}' in lab ${state.lab}: its pods are ${Object.keys(state.pods).join(', ')}`)
  if (!netnsExists(p.ns)) throw new TraceError(`pod ${pod}'s namespace ${p.ns} is gone: run '${cliCommand('lab up --ambient', state.lab)}'`)
  return p.ns
}

function readLines(file: string, from: number): ZtunnelLine[] {
  return existsSync(file) ? parseZtunnelLog(readFileSync(file).subarray(from).toString('utf8')) : []
}

export async function runAmbientTrace(options: TraceOptions): Promise<AmbientReport> {
  const state = readState(options.lab)
  if (!state?.complete) throw new LabNotUpError(options.lab)
  if (!state.ambient) throw new TraceError(`lab ${options.lab} is not in ambient mode`)
  if (options.from === options.to) throw new TraceError('--from and --to name the same pod; trace a request between two pods')
  const pods = [options.from, options.to]
  const ns = Object.fromEntries(pods.map((p) => [p, podNs(state, p)]))
  const server = endpointOf(state.pods[options.to]!.ip, options.port)
  const url = `http://${formatEndpoint(server)}/`
  const log = ztunnelAccessLog(state.lab)
  const offset = existsSync(log) ? statSync(log).size : 0
  const monitors = pods.map((p) => new TraceMonitor(ns[p]!))
  const raw: Record<string, string> = {}
  let request: { client: ReturnType<typeof endpointOf>; status: string } | undefined
  let lines: ZtunnelLine[] = []
  let failure: unknown
  try {
    await armMonitors(monitors, (n) => installTraceTable(n, [options.port, ...ambientPorts]))
    if (options.signal?.aborted) throw new TraceError('interrupted before the request was sent')
    request = await sendRequest(ns[options.from]!, url)
    // the ztunnel logs at close: its outbound and inbound line, and the called pod's own call when it makes one
    const mesh = (p: string) => Boolean(state.pods[p]?.sidecar)
    const expected = (mesh(options.from) ? 1 : 0) + (mesh(options.to) ? 1 : 0) + (mesh(options.to) && podSpec(options.to)?.calls ? 1 : 0)
    const end = Date.now() + 4000
    while ((lines = readLines(log, offset)).length < expected && Date.now() < end) await sleep(50)
    await Promise.all(monitors.map((m) => m.settle()))
  } catch (err) {
    failure = err
  }
  const problems: string[] = []
  for (const p of pods) await removeTraceTable(ns[p]!).catch((err: Error) => problems.push(err.message))
  for (const [i, p] of pods.entries()) raw[p] = await monitors[i]!.stop()
  if (failure !== undefined || !request) throw failure ?? new TraceError('the request was not sent')
  if (problems.length) throw new TraceError(`could not remove the trace table: ${problems.join('; ')}`)

  const iptables = new Map<string, string>()
  for (const p of pods) {
    const tables = ['nat', 'mangle'].flatMap((table) => [
      { family: 'ip', table },
      { family: 'ip6', table },
    ])
    for (const [k, v] of await readIptablesRules(ns[p]!, tables)) iptables.set(`${p} ${k}`, v)
  }
  const conntrack = (await Promise.all(pods.map((p) => readConntrack(p, ns[p]!)))).flat()
  const routing = { [options.to]: await readReplyRouting(ns[options.to]!, request.client.address) }
  return buildAmbientReport({
    lab: state.lab,
    request: {
      from: options.from,
      to: options.to,
      url,
      client: formatEndpoint(request.client),
      server: formatEndpoint(server),
      status: request.status,
    },
    raw,
    ztunnel: { pid: state.ambient.ztunnel ?? null, ns: state.bridgeNs, lines },
    pods: Object.fromEntries(
      Object.entries(state.pods).map(([name, p]) => [name, { ns: p.ns, ip: p.ip, ip6: p.ip6, app: p.pids.app ?? null }]),
    ),
    iptables,
    conntrack,
    routing,
  })
}
