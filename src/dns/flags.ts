// The DNS proxy's flags of `sidecar-lab proxy`. Kept here so the proxy's flag file only lists and calls
// them. Upstreams come from --dns-upstream, else from the resolv.conf the proxy starts with.
import { readFileSync } from 'node:fs'
import { InvalidFlagError } from '../errors.js'
import { duration, integer } from '../flags/values.js'
import { quoteInput } from '../quote.js'
import { defaultDnsConfig, type DnsConfig } from './config.js'
import { parseNameserver, readResolvConf } from './resolv-conf.js'
import { parseHostsFile, type HostsLine } from './table.js'

export const dnsFlags = [
  { name: 'dns-port', value: 'PORT', help: 'DNS proxy on 127.0.0.1 and [::1], UDP and TCP (0 disables)', fallback: '15053' },
  { name: 'dns-hosts', value: 'FILE', help: 'extra names for the DNS table, /etc/hosts syntax', fallback: '' },
  {
    name: 'dns-upstream',
    value: 'LIST',
    help: 'where unknown names go, ADDRESS[:PORT],...',
    fallback: '',
    shownDefault: "the --dns-resolv-conf file's nameservers",
  },
  { name: 'dns-resolv-conf', value: 'FILE', help: 'nameservers and search list to use', fallback: '/etc/resolv.conf' },
  { name: 'dns-timeout', value: 'DURATION', help: 'upstream answer timeout; then SERVFAIL', fallback: '5s' },
]

export function parseDnsFlags(str: (name: string) => string | undefined): DnsConfig {
  const port = integer('dns-port', str('dns-port'), defaultDnsConfig.port, 0, 65535)
  const timeoutMs = duration('dns-timeout', str('dns-timeout'), defaultDnsConfig.timeoutMs, false)
  if (port === 0) return { ...defaultDnsConfig, port: 0, timeoutMs }
  // A missing resolv.conf is no error when upstreams are given: a pod may have none.
  const resolvPath = str('dns-resolv-conf') ?? '/etc/resolv.conf'
  const upstreamText = str('dns-upstream')
  const resolv = upstreamText && str('dns-resolv-conf') === undefined ? safeResolv(resolvPath) : readResolvConf(resolvPath)
  const upstreams = upstreamText
    ? upstreamText
        .split(',')
        .filter((s) => s.trim())
        .map((s) => parseNameserver(s, '--dns-upstream'))
    : resolv.nameservers
  return { ...defaultDnsConfig, port, timeoutMs, upstreams, search: resolv.search, hosts: hosts(str('dns-hosts')) }
}

function safeResolv(path: string) {
  try {
    return readResolvConf(path)
  } catch {
    return { nameservers: [], search: [] }
  }
}

function hosts(file: string | undefined): HostsLine[] {
  if (!file) return []
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new InvalidFlagError(`--dns-hosts: cannot read ${quoteInput(file, 200)}: ${/^[^,]*/.exec((err as Error).message)![0]}`)
  }
  try {
    return parseHostsFile(text, `--dns-hosts ${file}`)
  } catch (err) {
    throw new InvalidFlagError((err as Error).message)
  }
}
