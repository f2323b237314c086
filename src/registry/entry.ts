// One registry entry's text -> RegistryEntry, and a registry file's lines -> entries. Kept apart from the
// lookup index so the entry syntax can grow (names with a namespace) without touching the matcher.
// Entry syntax: [[NAMESPACE/]NAME=]ADDRESS[/PREFIX][:PORT], IPv6 in brackets when a port follows ([2001:2::1]:80).
// A namespace makes NAME a Kubernetes service (default/reviews=... is reviews.default.svc.cluster.local), which
// the DNS proxy's name table answers for under every name a pod's search list produces.
import { isIP } from 'node:net'
import { InvalidFlagError } from '../errors.js'
import { quoteInput } from '../quote.js'

export interface RegistryEntry {
  name: string
  address: string
  prefix: number
  family: 4 | 6
  /** 0 = any port */
  port: number
  /** Kubernetes namespace of a named service (NAMESPACE/NAME=...); undefined for a plain host name */
  namespace?: string
}

export function parseRegistryEntry(text: string, source: string): RegistryEntry {
  const bad = (why: string) =>
    new InvalidFlagError(
      `${source}: ${quoteInput(text)} ${why} (expected [[NAMESPACE/]NAME=]ADDRESS[/PREFIX][:PORT], IPv6 as [ADDRESS[/PREFIX]]:PORT)`,
    )
  const named = /^(?:([a-z0-9]([a-z0-9-]*[a-z0-9])?)\/)?([A-Za-z0-9_.-]+)=(.*)$/.exec(text.trim())
  let rest = named ? named[4]! : text.trim()
  let port: string | undefined
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(rest)
  if (bracketed) [, rest, port] = bracketed as unknown as [string, string, string | undefined]
  else if (!rest.includes('::') && /^[0-9./]+:\d+$/.test(rest)) [rest, port] = rest.split(':') as [string, string]
  const [address, prefix, ...extra] = rest.split('/')
  const family = isIP(address ?? '')
  if (!address || family === 0 || extra.length) throw bad('has no valid IP address')
  const max = family === 4 ? 32 : 128
  const bits = prefix === undefined ? max : Number(prefix)
  if (!/^\d+$/.test(prefix ?? '0') || bits > max) throw bad(`has a bad prefix length${/^\d+$/.test(prefix ?? '') ? ` /${prefix}` : ''}`)
  const portNumber = port === undefined ? 0 : Number(port)
  if (portNumber < 1 && port !== undefined) throw bad('has port 0')
  if (portNumber > 65535) throw bad(`has port ${port} out of range`)
  const entry: RegistryEntry = { name: named ? named[3]! : text.trim(), address, prefix: bits, family: family as 4 | 6, port: portNumber }
  if (named?.[1]) entry.namespace = named[1]
  return entry
}

/** A registry file: one entry a line, '#' starts a comment; errors name the file and the line number. */
export function parseRegistryText(text: string, file: string): RegistryEntry[] {
  const entries: RegistryEntry[] = []
  text.split('\n').forEach((line, i) => {
    const hash = line.indexOf('#')
    const item = (hash === -1 ? line : line.slice(0, hash)).trim()
    if (item) entries.push(parseRegistryEntry(item, `--registry-file ${quoteInput(file, 200)} line ${i + 1}`))
  })
  return entries
}
