// argv + environment -> settings, with istio-iptables' flags, short names, defaults and environment
// variables (the long name upper-cased, '-' -> '_'). A flag on the command line beats its variable.
// Every value is checked here, so the builders can trust what they get.
import { InvalidFlagError, UnknownFlagError } from '../errors.js'
import { interfaceNameProblem, readAddress, readInteger, readPort } from '../flags/values.js'
import { defaultRuleConfig, defaultRunOptions, ruleConfig, splitList } from './config.js'
import type { IptablesSettings, RuleConfig, RunOptions } from './config.js'
import { splitServers } from './ranges.js'
import { runnable } from '../invocation.js'
import { logFormatEnv } from '../log-format.js'
import { helpWidth, wrapHanging } from '../text/wrap.js'

export interface FlagSpec {
  long: string
  short?: string
  /** environment variables that set it too ([] for this project's own flags) */
  env: string[]
  /** the default, as --help shows it */
  def: string
  meaning: string
  /** takes no value (`--flag` is true, `--flag=false` allowed) */
  bool?: boolean
  set(s: IptablesSettings, value: string, name: string): void
}

const COMMAND = 'sidecar-lab iptables'

type RuleKey = { [K in keyof RuleConfig]: RuleConfig[K] extends string ? K : never }[keyof RuleConfig]
type RunBoolKey = { [K in keyof RunOptions]-?: RunOptions[K] extends boolean ? K : never }[keyof RunOptions]

const fail = (name: string, value: string, why: string) => new InvalidFlagError(`invalid value "${value}" for ${name}: ${why}`)

// The shared value parsers (src/flags/values.ts) with pflag's wording: invalid value "V" for --flag: why.
function port(name: string, value: string): number {
  const n = readPort(value)
  if (n === undefined) throw fail(name, value, 'not a port number (1-65535)')
  return n
}

function integer(name: string, value: string): number {
  const n = readInteger(value, 0, 0xffffffff)
  if (n === undefined) throw fail(name, value, 'not a non-negative integer')
  return n
}

function ports(name: string, value: string, star: boolean): string {
  if (star && value.trim() === '*') return '*'
  for (const p of splitList(value)) {
    if (p === '*') throw fail(name, value, "'*' must stand alone, and is allowed only for --istio-inbound-ports")
    if (readPort(p) === undefined) throw fail(name, value, `"${p}" is not a port number (1-65535)`)
  }
  return value
}

function cidr(name: string, value: string, entry: string): void {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(entry)
  const bits = m ? Number(m[2]) : NaN
  if (m && readAddress(m[1] ?? '', 4) && bits <= 32) return
  if (m && readAddress(m[1] ?? '', 6) && bits <= 128) return
  throw fail(name, value, `"${entry}" is not an IPv4 or IPv6 CIDR (address/prefix, e.g. 10.0.0.0/8 or fd00::/8)`)
}

function cidrs(name: string, value: string, star: 'allowed' | 'refused'): string {
  if (value.trim() === '*') {
    if (star === 'allowed') return '*'
    throw fail(name, value, "'*' would exclude every destination; istio-iptables refuses it too")
  }
  for (const entry of splitList(value)) cidr(name, value, entry)
  return value
}

/** Linux dev_valid_name() (src/flags/values.ts). */
function interfaces(name: string, value: string): string {
  for (const nic of splitList(value)) {
    const why = interfaceNameProblem(nic)
    if (why) throw fail(name, value, `interface "${nic}" ${why}`)
  }
  return value
}

function owners(name: string, value: string): string {
  const list = splitList(value)
  if (list.length === 0) throw fail(name, value, 'needs at least one id')
  for (const id of list) {
    if (!/^(\d+|[a-z_][a-z0-9_.-]*\$?)$/i.test(id)) throw fail(name, value, `"${id}" is neither a number nor a name`)
  }
  return value
}

function bool(name: string, value: string): boolean {
  if (/^(1|t|true)$/i.test(value)) return true
  if (/^(0|f|false)$/i.test(value)) return false
  throw fail(name, value, 'not a boolean (true or false)')
}

const str = (key: RuleKey, check?: (name: string, value: string) => string) => (s: IptablesSettings, value: string, name: string) => {
  s.rules[key] = check ? check(name, value) : value
}
const num =
  (key: 'proxyPort' | 'inboundCapturePort' | 'inboundTunnelPort' | 'inboundTProxyMark' | 'inboundTProxyRouteTable', kind: typeof port) =>
  (s: IptablesSettings, value: string, name: string) => {
    s.rules[key] = kind(name, value)
  }
const flagOn =
  (key: 'redirectDNS' | 'captureAllDNS' | 'enableIPv6' | 'dropInvalid') => (s: IptablesSettings, value: string, name: string) => {
    s.rules[key] = bool(name, value)
  }
const runOn = (key: RunBoolKey) => (s: IptablesSettings, value: string, name: string) => {
  s.run[key] = bool(name, value)
}

const envOf = (long: string) => [long.toUpperCase().replaceAll('-', '_')]

function spec(
  long: string,
  short: string | undefined,
  def: string,
  meaning: string,
  set: FlagSpec['set'],
  extra: Partial<FlagSpec> = {},
): FlagSpec {
  return { long, ...(short ? { short } : {}), env: envOf(long), def, meaning, set, ...extra }
}

export const flagSpecs: FlagSpec[] = [
  spec('envoy-port', 'p', '15001', 'outbound redirect target (ISTIO_REDIRECT)', num('proxyPort', port)),
  spec('inbound-capture-port', 'z', '15006', 'inbound redirect / TPROXY target', num('inboundCapturePort', port)),
  spec(
    'inbound-tunnel-port',
    'e',
    '15008',
    'always RETURNed in ISTIO_INBOUND, skipped by the loopback redirect',
    num('inboundTunnelPort', port),
  ),
  spec('proxy-uid', 'u', 'uid of $ENVOY_USER, else 1337', 'comma list of UIDs exempt from capture', str('proxyUID', owners)),
  spec('proxy-gid', 'g', 'same as --proxy-uid', 'comma list of GIDs exempt from capture', str('proxyGID', owners)),
  spec('istio-inbound-interception-mode', 'm', '""', 'TPROXY, anything else behaves as REDIRECT', str('inboundInterceptionMode')),
  spec(
    'istio-inbound-ports',
    'b',
    '""',
    'ports to capture inbound; "" = none, * = all',
    str('inboundPortsInclude', (n, v) => ports(n, v, true)),
  ),
  spec(
    'istio-local-exclude-ports',
    'd',
    '""',
    'inbound ports not captured; only with -b *',
    str('inboundPortsExclude', (n, v) => ports(n, v, false)),
  ),
  spec('istio-exclude-interfaces', 'c', '""', 'interfaces skipped in both directions', str('excludeInterfaces', interfaces)),
  spec(
    'istio-service-cidr',
    'i',
    '""',
    'outbound CIDRs captured; "" = no catch-all, * = all',
    str('outboundIPRangesInclude', (n, v) => cidrs(n, v, 'allowed')),
  ),
  spec(
    'istio-service-exclude-cidr',
    'x',
    '""',
    'outbound CIDRs not captured (* is an error)',
    str('outboundIPRangesExclude', (n, v) => cidrs(n, v, 'refused')),
  ),
  spec(
    'istio-outbound-ports',
    'q',
    '""',
    'outbound ports captured whatever the destination',
    str('outboundPortsInclude', (n, v) => ports(n, v, false)),
  ),
  spec(
    'istio-local-outbound-ports-exclude',
    'o',
    '""',
    'outbound ports never captured (tcp and udp)',
    str('outboundPortsExclude', (n, v) => ports(n, v, false)),
  ),
  spec(
    'kube-virt-interfaces',
    'k',
    '""',
    'inbound traffic on these interfaces is treated as outbound',
    str('rerouteVirtualInterfaces', interfaces),
  ),
  spec('istio-inbound-tproxy-mark', 't', '1337', 'fwmark for TPROXY', num('inboundTProxyMark', integer)),
  spec('istio-inbound-tproxy-route-table', 'r', '133', 'policy routing table for TPROXY', num('inboundTProxyRouteTable', integer)),
  spec('dry-run', 'n', 'false', 'print the plan on stdout, change nothing', runOn('dryRun'), { bool: true }),
  spec('redirect-dns', undefined, 'false', 'send DNS for the --dns-servers to 15053', flagOn('redirectDNS'), {
    bool: true,
    env: ['REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'],
  }),
  spec('capture-all-dns', undefined, 'false', 'send all port-53 traffic to 15053', flagOn('captureAllDNS'), { bool: true }),
  spec('drop-invalid', undefined, 'false', 'mangle: conntrack INVALID goes to ISTIO_DROP', flagOn('dropInvalid'), { bool: true }),
  spec('dual-stack', undefined, 'false', 'IPv6 as well', flagOn('enableIPv6'), { bool: true }),
  spec('network-namespace', undefined, '""', 'the namespace to program (name in /run/netns or a path)', (s, v, n) => {
    if (v === '') throw fail(n, v, 'needs a namespace name or path')
    s.run.networkNamespace = v
  }),
  spec('reconcile', undefined, 'false', 'clean up and re-apply when existing rules differ', runOn('reconcile'), { bool: true }),
  spec('cleanup-only', undefined, 'false', 'remove the rules only', runOn('cleanupOnly'), { bool: true }),
  spec('force-apply', undefined, 'false', 'apply even when rules seem present', runOn('forceApply'), { bool: true }),
  spec('native-nftables', undefined, 'false', 'program nftables directly instead of iptables', runOn('nativeNftables'), { bool: true }),
  // This project's own flags: no environment variables.
  spec('enable-ipv6', undefined, 'false', 'same as --dual-stack', flagOn('enableIPv6'), { bool: true, env: [] }),
  spec(
    'dns-servers',
    undefined,
    '""',
    'DNS servers to capture, IPv4 and IPv6 (istio-iptables reads /etc/resolv.conf)',
    (s, v, n) => {
      for (const ip of splitList(v)) if (!readAddress(ip)) throw fail(n, v, `"${ip}" is not an IP address`)
      const { v4, v6 } = splitServers(v)
      s.rules.dnsServersV4 = v4
      s.rules.dnsServersV6 = v6
    },
    { env: [] },
  ),
  spec(
    'compat',
    undefined,
    'current',
    "'legacy': the older layout of a published rule listing (Istio about 1.10)",
    (s, v, n) => {
      if (v !== 'legacy' && v !== 'current') throw fail(n, v, "expected 'legacy' or 'current'")
      s.run.compat = v
    },
    { env: [] },
  ),
  spec('explain', undefined, 'false', 'print the plan with a comment above every rule (implies --dry-run)', runOn('explain'), {
    bool: true,
    env: [],
  }),
  spec(
    'log-format',
    undefined,
    'text on a terminal, else json',
    `the log's format: json or text (env ${logFormatEnv})`,
    (s, v, n) => {
      if (v !== 'json' && v !== 'text') throw fail(n, v, "expected 'json' or 'text'")
      s.run.logFormat = v
    },
    { env: [] },
  ),
  spec('help', 'h', '', 'this help', runOn('help'), { bool: true, env: [] }),
]

/** Set only through the environment, as in istio-iptables. */
export const envOnly: Array<{ env: string; def: string; meaning: string; set: FlagSpec['set'] }> = [
  { env: 'ISTIO_OUTBOUND_OWNER_GROUPS', def: '*', meaning: 'groups whose outbound traffic is captured', set: str('ownerGroupsInclude') },
  {
    env: 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE',
    def: '""',
    meaning: 'groups never captured (with the default above)',
    set: str('ownerGroupsExclude'),
  },
  {
    env: 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR',
    def: '127.0.0.1/32',
    meaning: 'what counts as IPv4 loopback',
    set: (s, v, n) => {
      cidr(n, v, v)
      if (!readAddress(v.split('/')[0] ?? '', 4)) throw fail(n, v, 'not an IPv4 CIDR')
      s.rules.hostIPv4LoopbackCidr = v
    },
  },
]

export interface ParseContext {
  env: NodeJS.ProcessEnv
  /** uid of a user name (for $ENVOY_USER); undefined when unknown */
  lookupUid?: (user: string) => number | undefined
}

export function parseFlags(argv: readonly string[], ctx: ParseContext): IptablesSettings {
  const s: IptablesSettings = { rules: ruleConfig(), run: { ...defaultRunOptions } }
  const envoyUser = ctx.env['ENVOY_USER']
  const uid = envoyUser ? ctx.lookupUid?.(envoyUser) : undefined
  s.rules.proxyUID = uid === undefined ? defaultRuleConfig.proxyUID : String(uid)

  for (const o of envOnly) {
    const v = ctx.env[o.env]
    if (v !== undefined && v !== '') o.set(s, v, o.env)
  }
  const given = new Set<string>()
  for (const f of flagSpecs) {
    for (const name of f.env) {
      const v = ctx.env[name]
      if (v === undefined || v === '') continue
      f.set(s, v, `${name} (--${f.long})`)
      given.add(f.long)
    }
  }
  parseArgv(argv, s, given)
  // istio-iptables: an unset GID list follows the UID list.
  if (!given.has('proxy-gid')) s.rules.proxyGID = s.rules.proxyUID
  return s
}

function parseArgv(argv: readonly string[], s: IptablesSettings, given: Set<string>): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const m = /^(?:--([a-z0-9-]+)|-([a-zA-Z]))(?:=(.*)|(.+))?$/s.exec(arg)
    if (!m && arg.startsWith('-')) throw new UnknownFlagError(arg.split('=')[0] ?? arg, COMMAND)
    if (!m) throw new InvalidFlagError(`unexpected argument "${arg}" (flags start with - or --; see '${runnable(COMMAND)} --help')`)
    const [, long, short, eqValue, glued] = m
    if (long && glued !== undefined) throw new UnknownFlagError(arg, COMMAND)
    const f = flagSpecs.find((x) => (long ? x.long === long : x.short === short))
    if (!f) throw new UnknownFlagError(long ? `--${long}` : `-${short}`, COMMAND)
    const name = f.short ? `--${f.long} (-${f.short})` : `--${f.long}`
    let value = eqValue ?? glued
    if (value === undefined) {
      if (f.bool) value = 'true'
      else {
        const next = argv[i + 1]
        if (next === undefined) throw new InvalidFlagError(`flag ${name} needs a value`)
        value = next
        i++
      }
    }
    f.set(s, value, name)
    given.add(f.long)
  }
}

export function helpText(): string {
  const flag = (f: FlagSpec) => {
    const facts = [f.def === '' ? '' : `default ${f.def}`, f.env.length > 0 ? `env ${f.env.join(', ')}` : ''].filter(Boolean)
    const head = `  ${f.short ? `-${f.short}, ` : '    '}--${f.long}${f.bool ? '' : ' VALUE'}`
    const text = `${f.meaning}${facts.length > 0 ? ` [${facts.join('; ')}]` : ''}`
    return [head, ...wrapHanging('        ', text, helpWidth)].join('\n')
  }
  return [
    `usage: ${COMMAND} [flags]`,
    '',
    "Generates Istio's traffic-capture rules (istio-iptables' flags) and applies them, or prints them",
    'with --dry-run.',
    '',
    'flags:',
    ...flagSpecs.map(flag),
    '',
    'environment only:',
    ...envOnly.map((o) => `  ${o.env}\n        ${o.meaning} [default ${o.def}]`),
    '',
  ].join('\n')
}
