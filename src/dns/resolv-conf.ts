// resolv.conf as the sidecar reads it at start: the nameservers it forwards to and the search list that
// tells it which suffixes a pod's resolver appends (Istio's agent reads the pod's /etc/resolv.conf too).
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { InvalidFlagError } from '../errors.js'

export interface Nameserver {
  address: string
  port: number
}

export interface ResolvConf {
  nameservers: Nameserver[]
  search: string[]
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [] }
  for (const raw of text.split('\n')) {
    const [key, ...rest] = raw
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/)
    // A link-local IPv6 nameserver with a zone (%eth0) cannot be dialled without it; keep the address whole.
    if (key === 'nameserver' && rest[0] && isIP(rest[0].split('%')[0]!)) out.nameservers.push({ address: rest[0], port: 53 })
    // The last search or domain line wins, as in glibc.
    if ((key === 'search' || key === 'domain') && rest.length) out.search = rest.map(normalizeName).filter(Boolean)
  }
  return out
}

export function readResolvConf(path: string): ResolvConf {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidFlagError(`--dns-resolv-conf: cannot read '${path}': ${(err as Error).message}`)
  }
  return parseResolvConf(text)
}

/** ADDRESS, ADDRESS:PORT or [IPv6]:PORT, as --dns-upstream takes them. */
export function parseNameserver(text: string, source: string): Nameserver {
  const t = text.trim()
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(t)
  const v4port = /^([0-9.]+):(\d+)$/.exec(t)
  const [address, port] = bracketed ? [bracketed[1]!, bracketed[2]] : v4port ? [v4port[1]!, v4port[2]] : [t, undefined]
  if (!isIP(address)) throw new InvalidFlagError(`${source}: '${text}' is not ADDRESS[:PORT] (IPv6 as [ADDRESS]:PORT)`)
  const n = port === undefined ? 53 : Number(port)
  if (n < 1 || n > 65535) throw new InvalidFlagError(`${source}: '${text}' has port ${port} out of range`)
  return { address, port: n }
}

/** Lower case, no trailing dot: the form every name in the table and every lookup key takes. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '')
}
