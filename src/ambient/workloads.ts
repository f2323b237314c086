// The ztunnel's workload table and mesh identities. ztunnel learns workloads from XDS, or in its local mode
// from a file (LOCAL_XDS_PATH); here --local-xds FILE, JSON: { "workloads": [ { name, namespace,
// serviceAccount, addresses, node, protocol } ] }. A destination address found here with protocol HBONE is
// reached over HBONE, expecting the workload's SPIFFE id (ztunnel's outbound.rs build_request). Identities come
// from the layout `lab up --ambient` writes (src/lab/identities.ts): DIR/<namespace>/<serviceAccount>/cert.pem
// and key.pem, every one signed by the CA in --ca-file.
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { InvalidFlagError } from '../errors.js'
import { quoteInput } from '../quote.js'
import { defaultTrustDomain, nameProblem, spiffeId } from './certs.js'
import { identityOfPem, type HboneIdentity } from './hbone/index.js'

export type WorkloadProtocol = 'HBONE' | 'TCP'

export interface Workload {
  name: string
  namespace: string
  serviceAccount: string
  addresses: string[]
  node: string
  protocol: WorkloadProtocol
  /** spiffe://cluster.local/ns/<namespace>/sa/<serviceAccount> */
  identity: string
}

export class WorkloadTable {
  readonly workloads: readonly Workload[]
  readonly #byAddress = new Map<string, Workload>()

  constructor(workloads: Workload[]) {
    this.workloads = workloads
    for (const w of workloads) for (const a of w.addresses) this.#byAddress.set(a, w)
  }

  /** The workload holding an address (IPv4-mapped IPv6 read as IPv4). */
  byAddress(address: string): Workload | undefined {
    return this.#byAddress.get(address.replace(/^::ffff:(?=\d+\.)/, ''))
  }
}

/** Reads and checks --local-xds; every problem names the file, the workload and the field. */
export function loadWorkloadTable(path: string): WorkloadTable {
  const where = `--local-xds ${quoteInput(path, 200)}`
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidFlagError(`${where}: cannot read it (${(err as NodeJS.ErrnoException).code})`)
  }
  return parseWorkloadTable(text, where)
}

export function parseWorkloadTable(text: string, where: string): WorkloadTable {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new InvalidFlagError(`${where}: not JSON (${(err as Error).message})`)
  }
  const list = (doc as { workloads?: unknown } | null)?.workloads
  if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) {
    throw new InvalidFlagError(`${where}: expected an object with a "workloads" array`)
  }
  const seen = new Map<string, string>()
  const workloads = list.map((raw, i) => {
    const w = checkWorkload(raw, `${where}: workloads[${i}]`)
    for (const a of w.addresses) {
      const other = seen.get(a)
      if (other) throw new InvalidFlagError(`${where}: address ${a} is given to both ${other} and ${w.namespace}/${w.name}`)
      seen.set(a, `${w.namespace}/${w.name}`)
    }
    return w
  })
  return new WorkloadTable(workloads)
}

function checkWorkload(raw: unknown, at: string): Workload {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidFlagError(`${at}: expected an object`)
  const o = raw as Record<string, unknown>
  const str = (field: string, fallback?: string): string => {
    const v = o[field] ?? fallback
    if (typeof v !== 'string' || v === '') throw new InvalidFlagError(`${at}: "${field}" must be a non-empty string`)
    return v
  }
  const name = str('name')
  const namespace = str('namespace', 'default')
  const serviceAccount = str('serviceAccount', 'default')
  const problem = nameProblem('namespace', namespace) ?? nameProblem('service account', serviceAccount)
  if (problem) throw new InvalidFlagError(`${at} (${name}): ${problem}`)
  const addresses = o.addresses
  if (!Array.isArray(addresses) || addresses.length === 0)
    throw new InvalidFlagError(`${at} (${name}): "addresses" must be a non-empty array`)
  for (const a of addresses) {
    if (typeof a !== 'string' || isIP(a) === 0)
      throw new InvalidFlagError(`${at} (${name}): address ${quoteInput(String(a), 60)} is not an IP address`)
  }
  const protocol = o.protocol ?? 'TCP'
  if (protocol !== 'HBONE' && protocol !== 'TCP') {
    throw new InvalidFlagError(`${at} (${name}): "protocol" must be "HBONE" or "TCP", got ${quoteInput(String(protocol), 40)}`)
  }
  return {
    name,
    namespace,
    serviceAccount,
    addresses: addresses as string[],
    node: typeof o.node === 'string' ? o.node : '',
    protocol,
    identity: spiffeId(defaultTrustDomain, namespace, serviceAccount),
  }
}

/** The mesh identities: the CA every peer is verified against and each service account's certificate. */
export class IdentityStore {
  readonly ca: string
  readonly dir: string
  readonly #cache = new Map<string, HboneIdentity>()

  constructor(caFile: string, dir: string) {
    try {
      this.ca = readFileSync(caFile, 'utf8')
    } catch (err) {
      throw new InvalidFlagError(`--ca-file ${quoteInput(caFile, 200)}: cannot read it (${(err as NodeJS.ErrnoException).code})`)
    }
    if (!this.ca.includes('-----BEGIN CERTIFICATE-----'))
      throw new InvalidFlagError(`--ca-file ${quoteInput(caFile, 200)}: no PEM certificate in it`)
    if (!existsSync(dir)) throw new InvalidFlagError(`--identity-dir ${quoteInput(dir, 200)}: no such folder`)
    this.dir = dir
  }

  /** The certificate and key of a service account, read once; an error naming the file and what is wrong. */
  of(namespace: string, serviceAccount: string): HboneIdentity {
    const k = `${namespace}/${serviceAccount}`
    const cached = this.#cache.get(k)
    if (cached) return cached
    const base = join(this.dir, namespace, serviceAccount)
    const read = (file: string) => {
      try {
        return readFileSync(join(base, file), 'utf8')
      } catch (err) {
        throw new InvalidFlagError(`--identity-dir: no identity for ${k}: ${join(base, file)} (${(err as NodeJS.ErrnoException).code})`)
      }
    }
    const identity = { cert: read('cert.pem'), key: read('key.pem'), ca: this.ca }
    const id = identityOfPem(identity.cert)
    const expected = spiffeId(defaultTrustDomain, namespace, serviceAccount)
    if (id !== expected) throw new InvalidFlagError(`--identity-dir: ${join(base, 'cert.pem')} is ${id}, not ${expected}`)
    this.#cache.set(k, identity)
    return identity
  }
}
