// The conformance data (test/fixtures/cases.json and the goldens beside it) as this project's types.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ruleConfig } from '../../src/iptables/config.js'
import type { RuleConfig } from '../../src/iptables/config.js'

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url))

export type Backend = 'iptables' | 'nftables'
type Fields = Record<string, string | number | boolean | string[]>

interface CasesFile {
  base: Fields
  cases: Record<string, Fields>
}

const file = JSON.parse(readFileSync(`${fixtures}cases.json`, 'utf8')) as CasesFile

/** Istio's field name in this project's camelCase: ProxyUID -> proxyUID, DNSServersV4 -> dnsServersV4. */
export function camel(field: string): string {
  return field.replace(/^[A-Z]+(?=[A-Z][a-z])|^[A-Z]+(?=[0-9]|$)|^[A-Z]/, (m) => m.toLowerCase())
}

export interface Case {
  name: string
  backend: Backend
  /** base + the case's fields, Istio's names */
  fields: Fields
  golden: string
}

/** Every case that has a golden for the backend, in cases.json order. */
export function casesFor(backend: Backend): Case[] {
  return Object.entries(file.cases).flatMap(([name, own]) => {
    let golden: string
    try {
      golden = readFileSync(`${fixtures}istio-${backend}/${name}.golden`, 'utf8')
    } catch {
      return []
    }
    const fields = Object.fromEntries(Object.entries({ ...file.base, ...own }).filter(([k]) => !k.startsWith('_')))
    return [{ name, backend, fields, golden }]
  })
}

export function configOf(fields: Fields): RuleConfig {
  const config = ruleConfig() as unknown as Record<string, unknown>
  for (const [field, value] of Object.entries(fields)) {
    const key = camel(field)
    if (!(key in config)) throw new Error(`cases.json field ${field} has no RuleConfig key (${key})`)
    config[key] = value
  }
  return config as unknown as RuleConfig
}

/** The golden without the builder's state checks (`iptables-save` / `ip6tables-save` lines). */
export function expected(golden: string): string {
  return golden
    .split('\n')
    .filter((line) => line !== 'iptables-save' && line !== 'ip6tables-save')
    .join('\n')
}

const flagOf: Record<string, string> = {
  ProxyPort: '-p',
  InboundCapturePort: '-z',
  InboundTunnelPort: '-e',
  ProxyUID: '-u',
  ProxyGID: '-g',
  InboundTProxyMark: '-t',
  InboundTProxyRouteTable: '-r',
  InboundInterceptionMode: '-m',
  InboundPortsInclude: '-b',
  InboundPortsExclude: '-d',
  OutboundIPRangesInclude: '-i',
  OutboundIPRangesExclude: '-x',
  OutboundPortsInclude: '-q',
  OutboundPortsExclude: '-o',
  RerouteVirtualInterfaces: '-k',
  ExcludeInterfaces: '-c',
}
const boolFlagOf: Record<string, string> = {
  RedirectDNS: '--redirect-dns',
  CaptureAllDNS: '--capture-all-dns',
  EnableIPv6: '--dual-stack',
  DropInvalid: '--drop-invalid',
}
const envOf: Record<string, string> = {
  OwnerGroupsInclude: 'ISTIO_OUTBOUND_OWNER_GROUPS',
  OwnerGroupsExclude: 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE',
  HostIPv4LoopbackCidr: 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR',
}

/** The command line (and environment) istio-iptables would be given for a case. */
export function argvOf(c: Case): { argv: string[]; env: Record<string, string> } {
  const argv = ['--dry-run', ...(c.backend === 'nftables' ? ['--native-nftables'] : [])]
  const env: Record<string, string> = {}
  const servers: string[] = []
  for (const [field, value] of Object.entries(c.fields)) {
    if (flagOf[field]) argv.push(flagOf[field], String(value))
    else if (boolFlagOf[field]) argv.push(`${boolFlagOf[field]}=${String(value)}`)
    else if (envOf[field]) env[envOf[field]] = String(value)
    else if (field === 'DNSServersV4' || field === 'DNSServersV6') servers.push(...(value as string[]))
    else throw new Error(`no flag for ${field}`)
  }
  if (servers.length > 0) argv.push('--dns-servers', servers.join(','))
  return { argv, env }
}
