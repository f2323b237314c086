// One traced request: trace tables and monitors up in the pods, the request sent as the app's user, the
// evidence collected, and the tables removed and the monitors stopped whatever happened in between.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { LabNotUpError, TraceError } from '../../errors.js'
import { execIn, netnsExists } from '../../sys/netns.js'
import { appUser, podSpec } from '../../lab/scene.js'
import { podDir, readState, type LabState } from '../../lab/state.js'
import { endpointOf, formatEndpoint, type Endpoint } from '../../net/address.js'
import { parseAccessLine, readConntrack, readIptablesRules, type AccessLine } from './evidence.js'
import { armMonitors, TraceMonitor } from './monitor.js'
import { installTraceTable, removeTraceTable, sidecarPorts } from './nft-table.js'
import { buildReport, type TraceReport } from './report.js'
import { findConnections, type TraceInput } from './steps.js'
import { readTproxyRouting } from './tproxy.js'
import { cliCommand } from '../../invocation.js'

export interface TraceOptions {
  lab: string
  from: string
  to: string
  port: number
  signal?: AbortSignal
}

function podNs(state: LabState, pod: string): string {
  const p = state.pods[pod]
  if (!p) throw new TraceError(`no pod '${pod}' in lab ${state.lab}: its pods are ${Object.keys(state.pods).join(', ')}`)
  if (!netnsExists(p.ns)) throw new TraceError(`pod ${pod}'s namespace ${p.ns} is gone: run '${cliCommand('lab up', state.lab)}'`)
  return p.ns
}

function accessLog(lab: string, pod: string): string {
  return join(podDir(lab, pod), 'access.log')
}

function readAccess(lab: string, pod: string, from: number): AccessLine[] {
  const file = accessLog(lab, pod)
  if (!existsSync(file)) return []
  return readFileSync(file)
    .subarray(from)
    .toString('utf8')
    .split('\n')
    .flatMap((l) => parseAccessLine(pod, l) ?? [])
}

export async function sendRequest(ns: string, url: string): Promise<{ client: Endpoint; status: string }> {
  const curl = [
    'setpriv',
    `--reuid=${appUser.uid}`,
    `--regid=${appUser.gid}`,
    '--clear-groups',
    'curl',
    '-sS',
    '-o',
    '/dev/null',
    '--max-time',
    '10',
    '-w',
    '%{http_code} %{local_ip} %{local_port}',
    url,
  ]
  const r = await execIn(ns, curl, { allowFailure: true, timeoutMs: 15_000 })
  const [code, ip, port] = r.stdout.trim().split(' ')
  if (!ip || !port || port === '0') throw new TraceError(`the request ${url} was not sent: ${r.stderr.trim() || `curl exit ${r.code}`}`)
  return {
    client: endpointOf(ip, Number(port)),
    status: r.code === 0 ? `HTTP ${code}` : `failed (curl exit ${r.code}): ${r.stderr.trim()}`,
  }
}

/** Until the sidecars logged every hop (they log at close) or the time is up. */
async function waitForAccess(input: TraceInput, read: () => AccessLine[], expected: number): Promise<void> {
  const end = Date.now() + 4000
  for (;;) {
    input.access = read()
    if (findConnections(input).connections.length >= expected || Date.now() > end) return
    await sleep(50)
  }
}

export async function runTrace(options: TraceOptions): Promise<TraceReport> {
  const state = readState(options.lab)
  if (!state?.complete) throw new LabNotUpError(options.lab)
  if (options.from === options.to) throw new TraceError('--from and --to name the same pod; trace a request between two pods')
  const pods = [options.from, options.to]
  const ns = Object.fromEntries(pods.map((p) => [p, podNs(state, p)]))
  const server = endpointOf(state.pods[options.to]!.ip, options.port)
  const url = `http://${formatEndpoint(server)}/`
  const ports = [options.port, ...sidecarPorts]
  const sidecarPods = pods.filter((p) => state.pods[p]!.sidecar)
  const offsets = Object.fromEntries(
    sidecarPods.map((p) => [p, existsSync(accessLog(state.lab, p)) ? statSync(accessLog(state.lab, p)).size : 0]),
  )

  const monitors = pods.map((p) => new TraceMonitor(ns[p]!))
  const raw: Record<string, string> = {}
  let request: { client: Endpoint; status: string } | undefined
  // only what waitForAccess needs to follow the chain of connections through the access logs (client: set
  // once curl has reported its socket)
  const input: TraceInput = {
    from: options.from,
    to: options.to,
    client: server,
    server,
    traversals: [],
    access: [],
    iptables: new Map(),
    sidecarPorts,
  }
  let failure: unknown
  try {
    await armMonitors(monitors, (n) => installTraceTable(n, ports))
    if (options.signal?.aborted) throw new TraceError('interrupted before the request was sent')
    request = await sendRequest(ns[options.from]!, url)
    input.client = request.client
    // the called pod's own outbound call (reviews -> ratings) adds its app's and its sidecar's connections
    const call = state.pods[options.to]!.sidecar && podSpec(options.to)?.calls ? 2 : 0
    await waitForAccess(input, () => sidecarPods.flatMap((p) => readAccess(state.lab, p, offsets[p]!)), 1 + sidecarPods.length + call)
    await Promise.all(monitors.map((m) => m.settle()))
  } catch (err) {
    failure = err
  }
  // The trace table comes out whatever happened; the first failure is the one reported.
  const problems: string[] = []
  for (const p of pods) await removeTraceTable(ns[p]!).catch((err: Error) => problems.push(err.message))
  for (const [i, p] of pods.entries()) raw[p] = await monitors[i]!.stop()
  if (failure !== undefined || !request) throw failure ?? new TraceError('the request was not sent')
  if (problems.length) throw new TraceError(`could not remove the trace table: ${problems.join('; ')}`)

  const iptables = new Map<string, string>()
  for (const p of pods) {
    const tables = ['nat', ...(state.mode === 'TPROXY' ? ['mangle'] : [])].flatMap((table) => [
      { family: 'ip', table },
      { family: 'ip6', table },
    ])
    const rules = await readIptablesRules(ns[p]!, tables)
    for (const [k, v] of rules) iptables.set(`${p} ${k}`, v)
  }
  const conntrack = (await Promise.all(pods.map((p) => readConntrack(p, ns[p]!)))).flat()
  const routing =
    state.mode === 'TPROXY'
      ? Object.fromEntries(await Promise.all(sidecarPods.map(async (p) => [p, await readTproxyRouting(ns[p]!)] as const)))
      : undefined
  return buildReport({
    mode: state.mode ?? 'REDIRECT',
    ...(routing ? { routing } : {}),
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
    access: input.access,
    iptables,
    conntrack,
  })
}
