// `sidecar-lab ztunnel` flags -> settings, every value checked, errors naming the flag and the value.
import { InvalidFlagError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { bytes, duration, integer, oneOf } from '../flags/values.js'
import { dnsFlags, parseDnsFlags } from '../dns/flags.js'
import { logFormatEnv } from '../log-format.js'
import { defaultProxyConfig, type ProxyConfig } from '../proxy/config.js'
import { quoteInput } from '../quote.js'
import { parseRegistryEntry } from '../registry/entry.js'
import { helpWidth, wrapHanging } from '../text/wrap.js'
import type { MeshConfig, PodInfo } from './pod-proxy.js'
import { IdentityStore, loadWorkloadTable } from './workloads.js'

export const COMMAND = 'sidecar-lab ztunnel'
/** ztunnel's INPOD_UDS default: the istio-cni node agent's ZDS socket */
export const defaultZdsPath = '/var/run/ztunnel/ztunnel.sock'

interface FlagSpec {
  name: string
  value?: string
  help: string
  fallback: string
}

const flags: FlagSpec[] = [
  { name: 'zds', value: 'PATH', help: `the node agent's ZDS socket to take pods from, as ztunnel's ${defaultZdsPath}`, fallback: '' },
  {
    name: 'pod',
    value: 'LIST',
    help: 'pods to serve without an agent: NAME=NETNS,... (NETNS: /run/netns/X or /proc/PID/ns/net)',
    fallback: '',
  },
  {
    name: 'local-xds',
    value: 'FILE',
    help: 'the workload table, as ztunnel\'s LOCAL_XDS_PATH: JSON {"workloads":[{name, namespace, serviceAccount, addresses, node, protocol: "HBONE" or "TCP"}]}; needs --ca-file and --identity-dir',
    fallback: '',
  },
  { name: 'ca-file', value: 'FILE', help: 'the mesh CA (root-cert.pem) that every peer certificate is verified against', fallback: '' },
  {
    name: 'identity-dir',
    value: 'DIR',
    help: 'workload certificates as DIR/NAMESPACE/SERVICE_ACCOUNT/{cert.pem,key.pem} (what `lab up --ambient` writes)',
    fallback: '',
  },
  { name: 'relay', value: 'ENGINE', help: "who relays the bytes: 'node' or 'native'", fallback: 'node' },
  { name: 'registry', value: 'LIST', help: 'service names for the access log, comma list of [NAME=]ADDR[/PREFIX][:PORT]', fallback: '' },
  { name: 'connect-timeout', value: 'DURATION', help: 'upstream connect timeout', fallback: '10s' },
  { name: 'idle-timeout', value: 'DURATION', help: 'close after no bytes either way (0 disables)', fallback: '1h' },
  { name: 'buffer-limit', value: 'BYTES', help: 'per-connection buffer limit before reading pauses', fallback: '1Mi' },
  { name: 'access-log', value: 'PATH', help: "ztunnel's access lines: a file, '-' for stdout, 'off'", fallback: '-' },
  { name: 'admin-port', value: 'PORT', help: 'admin on 127.0.0.1: /config_dump, /stats, /quitquitquit (0 disables)', fallback: '15000' },
  { name: 'stats-port', value: 'PORT', help: '/metrics and /stats/prometheus on every address (0 disables)', fallback: '15020' },
  { name: 'ready-port', value: 'PORT', help: '/healthz/ready on every address (0 disables)', fallback: '15021' },
  ...dnsFlags,
  { name: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', fallback: 'info' },
  { name: 'log-format', value: 'FORMAT', help: `json or text (env ${logFormatEnv})`, fallback: 'text on a terminal, else json' },
  { name: 'help', help: 'show this help', fallback: 'false' },
]

export interface StaticPod {
  info: PodInfo
  netns: string
}

export interface ZtunnelSettings {
  proxy: ProxyConfig
  /** null: no agent (pods from --pod only) */
  zds: string | null
  pods: StaticPod[]
  accessLog: string | null
  /** HBONE: the workload table and the identities (null: none given, everything plain) */
  mesh: MeshConfig | null
  adminPort: number
  statsPort: number
  readyPort: number
  logFormat: string | undefined
}

export function ztunnelHelp(): string {
  const rows = flags.map((f) => [
    `--${f.name}${f.value ? ` ${f.value}` : ''}`,
    `${f.help}${f.value ? ` (default ${f.fallback || 'none'})` : ''}`,
  ])
  const width = Math.max(...rows.map(([a]) => a!.length))
  return [
    `usage: ${COMMAND} [flags]`,
    '',
    "Runs ambient mode's node proxy: one process in the node's network namespace that serves every pod",
    "added to it. For each pod it opens 15001, 15006, 15008 and 15053 inside the pod's network namespace",
    '(the in-pod rules of `sidecar-lab inpod-rules` redirect there), marks every socket it makes there',
    "0x539, and reaches the app from the caller's own address. Pods come from the istio-cni node agent",
    'over ZDS (`sidecar-lab cni-agent`), or from --pod. With --local-xds, --ca-file and --identity-dir, a',
    'connection to a workload the table marks HBONE goes to its 15008 as mutual TLS + HTTP/2 CONNECT, and',
    "each pod's 15008 serves HBONE with the pod's own certificate.",
    '',
    'flags:',
    ...rows.flatMap(([a, b]) => wrapHanging(`  ${a!.padEnd(width)}  `, b!, helpWidth)),
    '',
    'DURATION: 500ms, 10s, 5m, 1h (a bare number is seconds). BYTES: 65536, 64Ki, 1Mi.',
    '',
  ].join('\n')
}

export function parseZtunnelFlags(argv: string[]): ZtunnelSettings | 'help' {
  const options = Object.fromEntries(
    flags.map((f) => [f.name, f.value ? { type: 'string' as const, value: f.value } : { type: 'boolean' as const }]),
  )
  const { values } = parseCommandArgs(argv, options, COMMAND)
  if (values.help) return 'help'
  const str = (name: string) => values[name] as string | undefined
  const d = defaultProxyConfig
  const zdsText = str('zds')
  if (zdsText === undefined && (str('pod') ?? '') === '') {
    throw new InvalidFlagError(`no pods to serve: give --zds PATH (the node agent's socket, e.g. ${defaultZdsPath}) or --pod NAME=NETNS`)
  }
  const pods = staticPods(str('pod') ?? '')
  const accessLog = str('access-log') ?? '-'
  const proxy: ProxyConfig = {
    ...d,
    relay: oneOf('relay', str('relay') ?? d.relay, ['node', 'native'] as const),
    registry: (str('registry') ?? '')
      .split(',')
      .filter((s) => s.trim())
      .map((item) => parseRegistryEntry(item, '--registry')),
    connectTimeoutMs: duration('connect-timeout', str('connect-timeout'), d.connectTimeoutMs, false),
    idleTimeoutMs: duration('idle-timeout', str('idle-timeout'), d.idleTimeoutMs, true),
    bufferLimitBytes: bytes('buffer-limit', str('buffer-limit'), d.bufferLimitBytes),
    accessLog: null,
    logLevel: oneOf('log-level', str('log-level') ?? 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    dns: parseDnsFlags(str),
  }
  return {
    proxy,
    zds: zdsText ?? null,
    pods,
    accessLog: accessLog === 'off' ? null : accessLog,
    mesh: meshFlags(str('local-xds'), str('ca-file'), str('identity-dir')),
    adminPort: integer('admin-port', str('admin-port'), 15000, 0, 65535),
    statsPort: integer('stats-port', str('stats-port'), 15020, 0, 65535),
    readyPort: integer('ready-port', str('ready-port'), 15021, 0, 65535),
    logFormat: str('log-format'),
  }
}

function staticPods(list: string): StaticPod[] {
  const pods: StaticPod[] = []
  for (const item of list.split(',').filter((s) => s.trim())) {
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(\/\S+)$/.exec(item.trim())
    if (!m) {
      throw new InvalidFlagError(
        `--pod ${quoteInput(item, 80)}: expected NAME=NETNS, a pod name (lower case, digits, '-') and an absolute path to its network namespace`,
      )
    }
    const name = m[1]!
    if (pods.some((p) => p.info.name === name)) throw new InvalidFlagError(`--pod: ${name} is given twice`)
    pods.push({ info: { uid: name, name, namespace: 'default', serviceAccount: name }, netns: m[3]! })
  }
  return pods
}

/** --local-xds with its two identity flags, all or none; each file checked now, so a bad one stops the start. */
function meshFlags(table: string | undefined, caFile: string | undefined, identityDir: string | undefined): MeshConfig | null {
  if (table === undefined && caFile === undefined && identityDir === undefined) return null
  const missing = [
    ['--local-xds', table],
    ['--ca-file', caFile],
    ['--identity-dir', identityDir],
  ].filter(([, v]) => v === undefined || v === '')
  if (missing.length > 0) {
    throw new InvalidFlagError(
      `HBONE needs --local-xds, --ca-file and --identity-dir together: ${missing.map(([f]) => f).join(' and ')} missing`,
    )
  }
  return { table: loadWorkloadTable(table!), identities: new IdentityStore(caFile!, identityDir!) }
}
