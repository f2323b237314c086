// `sidecar-lab proxy` flags -> ProxyConfig, every value checked, errors naming flag and value.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { InvalidFlagError, UnknownFlagError } from '../errors.js'
import { defaultProxyConfig, type ProxyConfig } from './config.js'
import { parseRegistryEntry, type RegistryEntry } from './registry.js'
import { dnsFlags, parseDnsFlags } from '../dns/flags.js'

interface FlagSpec {
  name: string
  value?: string
  help: string
  fallback: string
}

export const proxyFlags: FlagSpec[] = [
  { name: 'outbound-port', value: 'PORT', help: 'virtualOutbound listener port', fallback: '15001' },
  { name: 'inbound-port', value: 'PORT', help: 'virtualInbound listener port', fallback: '15006' },
  { name: 'bind', value: 'ADDRESS', help: "listen address ('::' is IPv4 and IPv6)", fallback: '::' },
  { name: 'inbound-source', value: 'ADDRESS', help: 'source of inbound passthrough connections (IPv4)', fallback: '127.0.0.6' },
  { name: 'inbound-source-ipv6', value: 'ADDRESS', help: 'source of inbound passthrough connections (IPv6)', fallback: '::6' },
  { name: 'outbound-traffic-policy', value: 'MODE', help: 'ALLOW_ANY or REGISTRY_ONLY', fallback: 'ALLOW_ANY' },
  { name: 'registry', value: 'LIST', help: 'known destinations, comma list of [NAME=]ADDR[/PREFIX][:PORT]', fallback: '' },
  { name: 'registry-file', value: 'FILE', help: 'known destinations, one entry a line (# comments)', fallback: '' },
  { name: 'connect-timeout', value: 'DURATION', help: 'upstream connect timeout', fallback: '10s' },
  { name: 'idle-timeout', value: 'DURATION', help: 'close after no bytes either way (0 disables)', fallback: '1h' },
  { name: 'buffer-limit', value: 'BYTES', help: 'per-connection buffer limit before reading pauses', fallback: '1Mi' },
  { name: 'max-connections', value: 'N', help: 'connections per listener; more are closed (overflow)', fallback: '100000' },
  { name: 'drain-duration', value: 'DURATION', help: 'on SIGTERM, how long open connections may finish (env TERMINATION_DRAIN_DURATION_SECONDS)', fallback: '5s' },
  { name: 'exit-on-zero-active', help: 'exit the drain as soon as no connection is open (env EXIT_ON_ZERO_ACTIVE_CONNECTIONS)', fallback: 'false' },
  { name: 'uid', value: 'UID', help: 'user to run as when started as root', fallback: '1337' },
  { name: 'gid', value: 'GID', help: 'group to run as when started as root', fallback: '1337' },
  { name: 'access-log', value: 'PATH', help: "access log file, '-' for stdout, 'off' for none (reopened on SIGHUP)", fallback: '-' },
  { name: 'access-log-format', value: 'FORMAT', help: "'text' (Istio's format) or 'json'", fallback: 'text' },
  { name: 'admin-port', value: 'PORT', help: "Envoy's admin on 127.0.0.1 (0 disables)", fallback: '15000' },
  { name: 'health-port', value: 'PORT', help: 'GET /healthz/ready (0 disables)', fallback: '15021' },
  { name: 'prometheus-port', value: 'PORT', help: "Envoy's /stats/prometheus (0 disables)", fallback: '15090' },
  { name: 'merged-metrics-port', value: 'PORT', help: "/stats/prometheus with the app's metrics merged in (0 disables)", fallback: '15020' },
  { name: 'app-metrics-url', value: 'URL', help: "the app's metrics to merge, e.g. http://127.0.0.1:9090/metrics", fallback: '' },
  ...dnsFlags,
  { name: 'log-level', value: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', fallback: 'info' },
  { name: 'help', help: 'show this help', fallback: 'false' },
]

export function proxyHelp(): string {
  const rows = proxyFlags.map((f) => [`--${f.name}${f.value ? ` ${f.value}` : ''}`, `${f.help}${f.value ? ` (default ${f.fallback || 'none'})` : ''}`])
  const width = Math.max(...rows.map(([a]) => a!.length))
  return [
    'usage: sidecar-lab proxy [flags]',
    '',
    'Runs the sidecar: virtualOutbound (15001) and virtualInbound (15006) recover each captured',
    "connection's original destination (SO_ORIGINAL_DST) and open a new connection to it; inbound",
    'connections leave from 127.0.0.6 so the capture rules let them through.',
    '',
    'flags:',
    ...rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`),
    '',
    'DURATION: 500ms, 10s, 5m, 1h (a bare number is seconds). BYTES: 65536, 64Ki, 1Mi.',
    '',
  ].join('\n')
}

export function parseProxyFlags(argv: string[], env: NodeJS.ProcessEnv = {}): ProxyConfig | 'help' {
  const options = Object.fromEntries(
    proxyFlags.map((f) => [f.name, { type: f.value ? ('string' as const) : ('boolean' as const) }]),
  )
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const flag = /'([^']+)'/.exec(e.message)?.[1] ?? argv.join(' ')
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UnknownFlagError(flag.split(' ')[0]!, 'sidecar-lab proxy')
    }
    throw new InvalidFlagError(`${e.message.replace(/\. To specify.*$/s, '')}`)
  }
  if (values.help) return 'help'
  const str = (name: string) => values[name] as string | undefined
  const d = defaultProxyConfig
  const envDrain = env.TERMINATION_DRAIN_DURATION_SECONDS
  const drain = str('drain-duration') ?? (envDrain ? `${envDrain}s` : undefined)
  const accessLog = str('access-log') ?? '-'
  return {
    bindAddress: address('bind', str('bind') ?? d.bindAddress),
    outboundPort: port('outbound-port', str('outbound-port'), d.outboundPort),
    inboundPort: port('inbound-port', str('inbound-port'), d.inboundPort),
    inboundSourceV4: address('inbound-source', str('inbound-source') ?? d.inboundSourceV4, 4),
    inboundSourceV6: address('inbound-source-ipv6', str('inbound-source-ipv6') ?? d.inboundSourceV6, 6),
    outboundTrafficPolicy: oneOf('outbound-traffic-policy', str('outbound-traffic-policy') ?? d.outboundTrafficPolicy, ['ALLOW_ANY', 'REGISTRY_ONLY'] as const),
    registry: registry(str('registry'), str('registry-file')),
    connectTimeoutMs: duration('connect-timeout', str('connect-timeout'), d.connectTimeoutMs, false),
    idleTimeoutMs: duration('idle-timeout', str('idle-timeout'), d.idleTimeoutMs, true),
    bufferLimitBytes: bytes('buffer-limit', str('buffer-limit'), d.bufferLimitBytes),
    maxConnections: integer('max-connections', str('max-connections'), d.maxConnections, 1, 10_000_000),
    drainMs: duration('drain-duration', drain, d.drainMs, true),
    exitOnZeroActive: Boolean(values['exit-on-zero-active']) || env.EXIT_ON_ZERO_ACTIVE_CONNECTIONS === 'true',
    uid: integer('uid', str('uid'), d.uid, 0, 4294967294),
    gid: integer('gid', str('gid'), d.gid, 0, 4294967294),
    accessLog: accessLog === 'off' ? null : accessLog,
    accessLogFormat: oneOf('access-log-format', str('access-log-format') ?? d.accessLogFormat, ['text', 'json'] as const),
    logLevel: oneOf('log-level', str('log-level') ?? d.logLevel, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    adminPort: integer('admin-port', str('admin-port'), d.adminPort, 0, 65535),
    healthPort: integer('health-port', str('health-port'), d.healthPort, 0, 65535),
    prometheusPort: integer('prometheus-port', str('prometheus-port'), d.prometheusPort, 0, 65535),
    mergedMetricsPort: integer('merged-metrics-port', str('merged-metrics-port'), d.mergedMetricsPort, 0, 65535),
    appMetricsUrl: httpUrl('app-metrics-url', str('app-metrics-url')),
    dns: parseDnsFlags(str, duration),
  }
}

function integer(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text.trim())) throw new InvalidFlagError(`--${flag}: '${text}' is not a whole number`)
  const n = Number(text)
  if (n < min || n > max) throw new InvalidFlagError(`--${flag}: ${n} is out of range (${min} to ${max})`)
  return n
}

function httpUrl(flag: string, text: string | undefined): string | null {
  if (text === undefined || text === '') return null
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidFlagError(`--${flag}: '${text}' is not a URL (http://127.0.0.1:9090/metrics)`)
  }
  if (url.protocol !== 'http:') throw new InvalidFlagError(`--${flag}: '${text}' must be an http:// URL`)
  return url.href
}

function port(flag: string, text: string | undefined, fallback: number): number {
  return integer(flag, text, fallback, 1, 65535)
}

function address(flag: string, text: string, family?: 4 | 6): string {
  const got = isIP(text)
  if (got === 0 || (family && got !== family)) {
    throw new InvalidFlagError(`--${flag}: '${text}' is not an IP${family ? `v${family}` : ''} address`)
  }
  return text
}

function oneOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new InvalidFlagError(`--${flag}: '${text}' is not one of ${allowed.join(', ')}`)
  }
  return text as T
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '': 1000 }

export function duration(flag: string, text: string | undefined, fallback: number, zeroAllowed: boolean): number {
  if (text === undefined) return fallback
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|)$/.exec(text.trim())
  if (!m) throw new InvalidFlagError(`--${flag}: '${text}' is not a duration (500ms, 10s, 5m, 1h)`)
  const ms = Math.round(Number(m[1]) * durationUnits[m[2]!]!)
  if (ms === 0 && !zeroAllowed) throw new InvalidFlagError(`--${flag}: must be more than 0`)
  if (ms > 2_147_483_647) throw new InvalidFlagError(`--${flag}: '${text}' is too long (at most about 24 days)`)
  return ms
}

const byteUnits: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }

export function bytes(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const m = /^(\d+)(Ki|Mi|Gi|KiB|MiB|GiB|)$/.exec(text.trim())
  if (!m) throw new InvalidFlagError(`--${flag}: '${text}' is not a size (65536, 64Ki, 1Mi)`)
  const n = Number(m[1]) * byteUnits[m[2]!]!
  if (n < 1024 || n > 1024 ** 3) throw new InvalidFlagError(`--${flag}: ${n} bytes is out of range (1Ki to 1Gi)`)
  return n
}

function registry(list: string | undefined, file: string | undefined): RegistryEntry[] {
  const entries: RegistryEntry[] = []
  for (const item of (list ?? '').split(',').filter((s) => s.trim())) entries.push(parseRegistryEntry(item, '--registry'))
  if (file) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new InvalidFlagError(`--registry-file: cannot read '${file}': ${(err as Error).message}`)
    }
    text.split('\n').forEach((line, i) => {
      const item = line.replace(/#.*/, '').trim()
      if (item) entries.push(parseRegistryEntry(item, `--registry-file ${file} line ${i + 1}`))
    })
  }
  return entries
}
