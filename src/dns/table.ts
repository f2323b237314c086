// The sidecar's name table, after Istio's pkg/dns (BuildNameTable and LookupHost): every mesh host with its
// A and AAAA addresses under each name a pod's search list can produce, answered locally with a 30 s TTL.
// A host that is known but has no address of the asked type gets NOERROR with no data (NXDOMAIN would tell
// the resolver the name does not exist at all, and it would stop trying AAAA/A).
import { isIP } from 'node:net'
import type { RegistryEntry } from '../registry/registry.js'
import { normalizeName } from './resolv-conf.js'

/** Istio's DNS proxy answers from its table with this TTL (pkg/dns: defaultTTLInSeconds). */
export const tableTtlSeconds = 30

export interface HostAddresses {
  /** the name records are given under: the FQDN for a Kubernetes service, the name itself otherwise */
  canonical: string
  a: string[]
  aaaa: string[]
}

export interface TableHit {
  /** set when the query carried a search suffix the resolver appended: answer with a CNAME to canonical */
  cnameFrom?: string
  host: HostAddresses
}

export interface TableOptions {
  /** the proxy's own namespace: short names (`reviews`) resolve only for services in it, as in Kubernetes */
  namespace: string
  clusterDomain: string
  /** the pod's search list: a query with one of these appended to a known name is answered by CNAME */
  search: string[]
}

export interface HostsLine {
  address: string
  names: string[]
}

/** /etc/hosts syntax: ADDRESS NAME [NAME...], # comments. */
export function parseHostsFile(text: string, source: string): HostsLine[] {
  const out: HostsLine[] = []
  text.split('\n').forEach((line, i) => {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean)
    if (!address) return
    if (!isIP(address) || names.length === 0)
      throw new Error(`${source} line ${i + 1}: expected ADDRESS NAME [NAME...], got '${line.trim()}'`)
    out.push({ address, names: names.map(normalizeName) })
  })
  return out
}

export class NameTable {
  readonly #names = new Map<string, HostAddresses>()
  readonly #search: string[]

  constructor(registry: RegistryEntry[], hosts: HostsLine[], options: TableOptions) {
    this.#search = options.search.map(normalizeName).filter(Boolean)
    for (const e of registry) {
      // Only single hosts with a name of their own: a CIDR or a bare address is no DNS name.
      const host = e.prefix === (e.family === 4 ? 32 : 128) && e.name !== e.address && !isIP(e.name)
      if (!host) continue
      const name = normalizeName(e.name)
      if (e.namespace) {
        const fqdn = `${name}.${e.namespace}.svc.${options.clusterDomain}`
        const alt = [fqdn, `${name}.${e.namespace}.svc`, `${name}.${e.namespace}`]
        if (e.namespace === options.namespace) alt.push(name)
        this.#add(fqdn, alt, e.address)
      } else {
        this.#add(name, [name], e.address)
      }
    }
    for (const h of hosts) this.#add(h.names[0]!, h.names, h.address)
  }

  #add(canonical: string, names: string[], address: string): void {
    let host = this.#names.get(canonical)
    if (!host) host = { canonical, a: [], aaaa: [] }
    const list = isIP(address) === 4 ? host.a : host.aaaa
    if (!list.includes(address)) list.push(address)
    for (const n of names) if (!this.#names.has(n)) this.#names.set(n, host)
  }

  get size(): number {
    return new Set(this.#names.values()).size
  }

  /** Every name the table answers for, for the admin page and tests. */
  names(): string[] {
    return [...this.#names.keys()].sort()
  }

  lookup(qname: string): TableHit | undefined {
    const key = normalizeName(qname)
    const host = this.#names.get(key)
    if (host) return { host }
    // The resolver tried a known name with a search domain appended (ndots:5 does that first): answer with
    // a CNAME to the real name so the pod needs one query instead of walking the whole search list.
    for (const suffix of this.#search) {
      if (!key.endsWith(`.${suffix}`)) continue
      const found = this.#names.get(key.slice(0, -suffix.length - 1))
      if (found) return { cnameFrom: key, host: found }
    }
    return undefined
  }
}

/** The namespace and cluster domain a pod's search list implies (`default.svc.cluster.local ...`). */
export function namespaceFromSearch(search: string[]): { namespace: string; clusterDomain: string } {
  for (const s of search) {
    const m = /^([a-z0-9-]+)\.svc\.(.+)$/.exec(normalizeName(s))
    if (m) return { namespace: m[1]!, clusterDomain: m[2]! }
  }
  return { namespace: 'default', clusterDomain: 'cluster.local' }
}
