// `sidecar-lab proxy` flags -> ProxyConfig, every value checked, errors naming flag and value.
import { readFileSync } from 'node:fs'
import { InvalidFlagError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { address, bytes, duration, httpUrl, integer, oneOf, port } from '../flags/values.js'
import { defaultProxyConfig, defaultRelay, relayEngines, type ProxyConfig } from './config.js'
import { quoteInput } from '../quote.js'
import { parseRegistryEntry, parseRegistryText, type RegistryEntry } from '../registry/entry.js'
import { dnsFlags, parseDnsFlags } from '../dns/flags.js'
import { logFormatEnv } from '../log-format.js'
import { helpWidth, wrapHanging } from '../text/wrap.js'

interface FlagSpec {
  name: string
  value?: string
  help: string
  fallback: string
  /** what --help says the default is, when it is not a value (fallback '') */
  shownDefault?: string
}

export const proxyFlags: FlagSpec[] = [
  { name: 'outbound-port', value: 'PORT', help: 'virtualOutbound listener port', fallback: '15001' },
  { name: 'inbound-port', value: 'PORT', help: 'virtualInbound listener port', fallback: '15006' },
  { name: 'bind', value: 'ADDRESS', help: "listen address ('::' is IPv4 and IPv6)", fallback: '::' },
  { name: 'inbound-source', value: 'ADDRESS', help: 'source of inbound passthrough connections (IPv4)', fallback: '127.0.0.6' },
  { name: 'inbound-source-ipv6', value: 'ADDRESS', help: 'source of inbound passthrough connections (IPv6)', fallback: '::6' },
  {
    name: 'interception-mode',
    value: 'MODE',
    help: 'inbound capture: REDIRECT, or TPROXY (the app sees the client; needs CAP_NET_ADMIN, default --uid 0)',
    fallback: 'REDIRECT',
  },
  {
    name: 'relay',
    value: 'ENGINE',
    help: "who relays the bytes: 'node' (node:net) or 'native' (the addon's epoll thread with splice)",
    fallback: defaultRelay,
  },
  { name: 'outbound-traffic-policy', value: 'MODE', help: 'ALLOW_ANY or REGISTRY_ONLY', fallback: 'ALLOW_ANY' },
  { name: 'registry', value: 'LIST', help: 'known destinations, comma list of [NAME=]ADDR[/PREFIX][:PORT]', fallback: '' },
  { name: 'registry-file', value: 'FILE', help: 'known destinations, one entry a line (# comments)', fallback: '' },
  { name: 'connect-timeout', value: 'DURATION', help: 'upstream connect timeout', fallback: '10s' },
  { name: 'idle-timeout', value: 'DURATION', help: 'close after no bytes either way (0 disables)', fallback: '1h' },
  { name: 'buffer-limit', value: 'BYTES', help: 'per-connection buffer limit before reading pauses', fallback: '1Mi' },
  { name: 'max-connections', value: 'N', help: 'connections per listener; more are closed (overflow)', fallback: '100000' },
  {
    name: 'drain-duration',
    value: 'DURATION',
    help: 'on SIGTERM, how long open connections may finish (env TERMINATION_DRAIN_DURATION_SECONDS)',
    fallback: '5s',
  },
  {
    name: 'exit-on-zero-active',
    help: 'exit the drain as soon as no connection is open (env EXIT_ON_ZERO_ACTIVE_CONNECTIONS)',
    fallback: 'false',
  },
  { name: 'uid', value: 'UID', help: 'user to run as when started as root', fallback: '1337' },
  { name: 'gid', value: 'GID', help: 'group to run as when started as root', fallback: '1337' },
  { name: 'access-log', value: 'PATH', help: "access log file, '-' for stdout, 'off' for none (reopened on SIGHUP)", fallback: '-' },
  { name: 'access-log-format', value: 'FORMAT', help: "'text' (Istio's format) or 'json'", fallback: 'text' },
  { name: 'admin-port', value: 'PORT', help: "Envoy's admin on 127.0.0.1 (0 disables)", fallback: '15000' },
  { name: 'health-port', value: 'PORT', help: 'GET /healthz/ready (0 disables)', fallback: '15021' },
  { name: 'prometheus-port', value: 'PORT', help: "Envoy's /stats/prometheus (0 disables)", fallback: '15090' },
  {
    name: 'merged-metrics-port',
    value: 'PORT',
    help: "/stats/prometheus with the app's metrics merged in (0 disables)",
    fallback: '15020',
  },
  { name: 'app-metrics-url', value: 'URL', help: "the app's metrics to merge, e.g. http://127.0.0.1:9090/metrics", fallback: '' },
  ...dnsFlags,
  { name: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', fallback: 'info' },
  { name: 'log-format', value: 'FORMAT', help: `json or text (env ${logFormatEnv})`, fallback: 'text on a terminal, else json' },
  { name: 'help', help: 'show this help', fallback: 'false' },
]

export function proxyHelp(): string {
  const rows = proxyFlags.map((f) => [
    `--${f.name}${f.value ? ` ${f.value}` : ''}`,
    `${f.help}${f.value ? ` (default ${f.shownDefault ?? (f.fallback || 'none')})` : ''}`,
  ])
  const width = Math.max(...rows.map(([a]) => a!.length))
  return [
    'usage: sidecar-lab proxy [flags]',
    '',
    'Runs the sidecar: virtualOutbound (15001) and virtualInbound (15006) recover each captured',
    "connection's original destination (SO_ORIGINAL_DST) and open a new connection to it; inbound",
    'connections leave from 127.0.0.6 so the capture rules let them through.',
    '',
    'flags:',
    ...rows.flatMap(([a, b]) => wrapHanging(`  ${a!.padEnd(width)}  `, b!, helpWidth)),
    '',
    'DURATION: 500ms, 10s, 5m, 1h (a bare number is seconds). BYTES: 65536, 64Ki, 1Mi.',
    '',
  ].join('\n')
}

export function parseProxyFlags(argv: string[], env: NodeJS.ProcessEnv = {}): ProxyConfig | 'help' {
  const parsed = parseProxyArgs(argv, env)
  return parsed === 'help' ? parsed : parsed.config
}

/** The config and which flags were given on the command line (a default --uid is no reason to warn). */
/** logFormat: --log-format as given (src/log-format.ts resolves it against the environment and stderr) */
export function parseProxyArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): { config: ProxyConfig; given: Set<string>; logFormat: string | undefined } | 'help' {
  const options = Object.fromEntries(
    proxyFlags.map((f) => [f.name, f.value ? { type: 'string' as const, value: f.value } : { type: 'boolean' as const }]),
  )
  const { values } = parseCommandArgs(argv, options, 'sidecar-lab proxy')
  if (values.help) return 'help'
  const str = (name: string) => values[name] as string | undefined
  const d = defaultProxyConfig
  const envDrain = env.TERMINATION_DRAIN_DURATION_SECONDS
  const drain = str('drain-duration') ?? (envDrain ? `${envDrain}s` : undefined)
  const accessLog = str('access-log') ?? '-'
  const interceptionMode = oneOf('interception-mode', str('interception-mode') ?? d.interceptionMode, ['REDIRECT', 'TPROXY'] as const)
  // Istio's injector runs a TPROXY sidecar as uid 0 (gid 1337): as 1337 its transparent connection to the
  // app would match the rules' uid-1337 ISTIO_IN_REDIRECT and be sent back to 15006.
  const uidFallback = interceptionMode === 'TPROXY' ? 0 : d.uid
  const config: ProxyConfig = {
    bindAddress: address('bind', str('bind') ?? d.bindAddress),
    outboundPort: port('outbound-port', str('outbound-port'), d.outboundPort),
    inboundPort: port('inbound-port', str('inbound-port'), d.inboundPort),
    inboundSourceV4: address('inbound-source', str('inbound-source') ?? d.inboundSourceV4, 4),
    inboundSourceV6: address('inbound-source-ipv6', str('inbound-source-ipv6') ?? d.inboundSourceV6, 6),
    interceptionMode,
    relay: oneOf('relay', str('relay') ?? d.relay, relayEngines),
    outboundTrafficPolicy: oneOf('outbound-traffic-policy', str('outbound-traffic-policy') ?? d.outboundTrafficPolicy, [
      'ALLOW_ANY',
      'REGISTRY_ONLY',
    ] as const),
    registry: registry(str('registry'), str('registry-file')),
    connectTimeoutMs: duration('connect-timeout', str('connect-timeout'), d.connectTimeoutMs, false),
    idleTimeoutMs: duration('idle-timeout', str('idle-timeout'), d.idleTimeoutMs, true),
    bufferLimitBytes: bytes('buffer-limit', str('buffer-limit'), d.bufferLimitBytes),
    maxConnections: integer('max-connections', str('max-connections'), d.maxConnections, 1, 10_000_000),
    drainMs: duration('drain-duration', drain, d.drainMs, true),
    exitOnZeroActive: Boolean(values['exit-on-zero-active']) || env.EXIT_ON_ZERO_ACTIVE_CONNECTIONS === 'true',
    uid: integer('uid', str('uid'), uidFallback, 0, 4294967294),
    gid: integer('gid', str('gid'), d.gid, 0, 4294967294),
    accessLog: accessLog === 'off' ? null : accessLog,
    accessLogFormat: oneOf('access-log-format', str('access-log-format') ?? d.accessLogFormat, ['text', 'json'] as const),
    logLevel: oneOf('log-level', str('log-level') ?? d.logLevel, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    adminPort: integer('admin-port', str('admin-port'), d.adminPort, 0, 65535),
    healthPort: integer('health-port', str('health-port'), d.healthPort, 0, 65535),
    prometheusPort: integer('prometheus-port', str('prometheus-port'), d.prometheusPort, 0, 65535),
    mergedMetricsPort: integer('merged-metrics-port', str('merged-metrics-port'), d.mergedMetricsPort, 0, 65535),
    appMetricsUrl: httpUrl('app-metrics-url', str('app-metrics-url')),
    dns: parseDnsFlags(str),
  }
  refuseSharedPorts(config)
  return { config, given: new Set(Object.keys(values).filter((k) => values[k] !== undefined)), logFormat: str('log-format') }
}

const portFlags: [string, keyof ProxyConfig][] = [
  ['outbound-port', 'outboundPort'],
  ['inbound-port', 'inboundPort'],
  ['admin-port', 'adminPort'],
  ['health-port', 'healthPort'],
  ['prometheus-port', 'prometheusPort'],
  ['merged-metrics-port', 'mergedMetricsPort'],
]

/**
 * Two listeners on one port fail only when the second binds (or, for the admin on 127.0.0.1 beside a
 * listener on '::', depending on the bind address): refuse it here, naming both flags.
 */
function refuseSharedPorts(config: ProxyConfig): void {
  const seen = new Map<number, string>()
  for (const [flag, key] of portFlags) {
    const port = config[key] as number
    if (port === 0) continue
    const other = seen.get(port)
    if (other) throw new InvalidFlagError(`--${other} and --${flag} are both ${port}: each needs a port of its own`)
    seen.set(port, flag)
  }
}

function registry(list: string | undefined, file: string | undefined): RegistryEntry[] {
  const entries: RegistryEntry[] = []
  for (const item of (list ?? '').split(',').filter((s) => s.trim())) entries.push(parseRegistryEntry(item, '--registry'))
  if (file) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      // The errno text only: Node's message repeats the path unquoted.
      throw new InvalidFlagError(`--registry-file: cannot read ${quoteInput(file, 200)}: ${/^[^,]*/.exec((err as Error).message)![0]}`)
    }
    // concat, not push(...): a spread of 100 000 entries can overflow the call stack
    return entries.concat(parseRegistryText(text, file))
  }
  return entries
}
