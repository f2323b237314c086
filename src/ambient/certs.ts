// The mesh's identities for HBONE: a lab CA and one workload certificate per service account, as Istio's CA
// gives ztunnel (the SPIFFE id spiffe://<trust domain>/ns/<namespace>/sa/<service account> as the only URI SAN,
// an ECDSA P-256 key, 24 hours). Certificates are made by openssl's CLI: node:crypto reads X.509 but cannot
// issue it. `openssl ca` rather than `x509 -req` because only it takes an exact start and end (OpenSSL 3.0's
// x509 has -days alone), which the fault tests need for certificates already expired or not yet valid.
// Keys are made by node:crypto and written 0600 from the start, so no key is ever readable by others; their
// owner is the user who runs this (root in the lab, which also runs the ztunnel).
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CertificateError } from '../errors.js'
import { quoteInput } from '../quote.js'
import { run } from '../sys/exec.js'

export const defaultTrustDomain = 'cluster.local'
/** Istio's workload certificates live 24 hours (pilot-agent's SECRET_TTL). */
export const defaultWorkloadValidity = '24h'
/** Istio's self-signed root lives 10 years; the lab's is made at every `lab up`, so a month is plenty. */
export const defaultCaValidity = '30d'

export interface Ca {
  /** The root certificate (PEM file): what every ztunnel trusts. */
  cert: string
  key: string
  dir: string
}

export interface WorkloadIdentity {
  /** The workload's certificate alone. */
  cert: string
  /** Its private key, mode 0600. */
  key: string
  /** The certificate followed by the root (Istio's cert-chain.pem): what a ztunnel presents. */
  chain: string
  /** The root to verify peers against (Istio's root-cert.pem), a copy of the CA's. */
  root: string
  spiffeId: string
}

export interface ValidityOptions {
  /** 90s, 30m, 24h, 7d. */
  validity?: string | undefined
  /** Exact dates instead of now + validity (certificates already expired or not yet valid, for fault tests). */
  notBefore?: Date
  notAfter?: Date
}

export interface WorkloadOptions extends ValidityOptions {
  namespace?: string | undefined
  serviceAccount: string
  trustDomain?: string | undefined
}

const caFiles = { cert: 'root-cert.pem', key: 'root-key.pem', state: 'openssl' }
const workloadFiles = { cert: 'cert.pem', key: 'key.pem', chain: 'cert-chain.pem', root: 'root-cert.pem' }

// $ENV:: values are filled in per call: the CA's state folder, the SPIFFE id (checked before it gets here)
const opensslConfig = `[ ca ]
default_ca = lab
[ lab ]
database = $ENV::CA_STATE/index.txt
new_certs_dir = $ENV::CA_STATE/newcerts
rand_serial = yes
default_md = sha256
policy = any_subject
unique_subject = no
email_in_dn = no
[ any_subject ]
organizationName = optional
commonName = optional
[ req ]
distinguished_name = empty_dn
prompt = no
[ empty_dn ]
[ root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ workload ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
# no subject, as Istio's workload certificates: the SAN is the identity, so it is critical (RFC 5280 4.2.1.6)
subjectAltName = critical, URI:$ENV::SPIFFE_ID
authorityKeyIdentifier = keyid
`

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Kubernetes' rule for namespace and service account names here: a DNS-1123 label. */
export function nameProblem(what: string, name: string): string | undefined {
  if (dns1123Label.test(name) && name.length <= 63) return undefined
  return (
    `${what} ${quoteInput(name, 80)} is not a valid name: at most 63 characters of a-z, 0-9 and '-', ` +
    `starting and ending with a letter or digit (a Kubernetes DNS-1123 label)`
  )
}

function checkTrustDomain(td: string): void {
  // SPIFFE: lowercase letters, digits, '.', '-' and '_'
  if (!/^[a-z0-9._-]{1,255}$/.test(td)) {
    throw new CertificateError(`trust domain ${quoteInput(td, 80)} is not valid: lowercase a-z, 0-9, '.', '-' and '_' only`)
  }
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** '24h' -> milliseconds; 1s to 3650d. */
export function parseValidity(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim())
  const ms = m ? Number(m[1]) * units[m[2]!]! : NaN
  if (!(ms >= 1000 && ms <= 3650 * units.d!)) {
    throw new CertificateError(`validity ${quoteInput(text, 40)} is not a duration from 1s to 3650d (90s, 30m, 24h, 7d)`)
  }
  return ms
}

function period(o: ValidityOptions, fallback: string): { notBefore: Date; notAfter: Date } {
  const notBefore = o.notBefore ?? new Date()
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + parseValidity(o.validity ?? fallback))
  if (notAfter <= notBefore) throw new CertificateError(`the certificate would end (${notAfter.toISOString()}) before it starts`)
  return { notBefore, notAfter }
}

/** openssl ca's -startdate/-enddate: GeneralizedTime, YYYYMMDDHHMMSSZ. */
function asn1Time(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z')
}

/** mkdir -p, with an error naming the folder when it cannot be made or written. */
function writableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    const probe = join(dir, `.write-test-${process.pid}`)
    writeFileSync(probe, '')
    rmSync(probe)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new CertificateError(`cannot write certificates to ${quoteInput(dir, 200)}: ${e.code ?? e.message}`)
  }
}

/** A fresh P-256 key, its file created 0600 (and made so if it existed). */
function writeKey(file: string): void {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  chmodSync(file, 0o600)
}

async function openssl(args: string[], caDir: string, env: Record<string, string> = {}): Promise<void> {
  const state = join(caDir, caFiles.state)
  await run('openssl', args, { env: { ...process.env, CA_STATE: state, SPIFFE_ID: 'unused', ...env } })
}

// openssl ca keeps a database (index.txt) it does not lock, and the request file is per process: one signing
// at a time per CA in this process. Two processes issuing from one CA at once are not supported.
const signing = new Map<string, Promise<unknown>>()

/** Signs a request for keyFile with openssl ca: the CA's own certificate (selfsign) or a workload's. */
function sign(...a: Parameters<typeof signNow>): Promise<void> {
  const caDir = a[0]
  const done = (signing.get(caDir) ?? Promise.resolve()).then(() => signNow(...a))
  const settled = done.catch(() => {})
  signing.set(caDir, settled)
  void settled.then(() => signing.get(caDir) === settled && signing.delete(caDir))
  return done
}

async function signNow(
  caDir: string,
  keyFile: string,
  out: string,
  subject: string,
  args: string[],
  when: ValidityOptions,
  fallback: string,
  env = {},
) {
  const { notBefore, notAfter } = period(when, fallback)
  const state = join(caDir, caFiles.state)
  const config = join(state, 'openssl.cnf')
  const csr = join(state, `request-${process.pid}.csr`)
  await openssl(['req', '-new', '-key', keyFile, '-subj', subject, '-config', config, '-out', csr], caDir)
  try {
    const dates = ['-startdate', asn1Time(notBefore), '-enddate', asn1Time(notAfter)]
    await openssl(['ca', '-batch', '-notext', '-config', config, '-in', csr, '-out', out, ...dates, ...args], caDir, env)
  } finally {
    rmSync(csr, { force: true })
  }
}

/**
 * A self-signed root CA in dir: root-cert.pem, root-key.pem (0600) and openssl's bookkeeping (openssl/).
 * An existing CA is refused unless replace is set (the workloads it signed would no longer verify).
 */
export async function makeCa(dir: string, o: ValidityOptions & { trustDomain?: string | undefined; replace?: boolean } = {}): Promise<Ca> {
  const trustDomain = o.trustDomain ?? defaultTrustDomain
  checkTrustDomain(trustDomain)
  period(o, defaultCaValidity) // a bad validity is refused before anything is written
  const ca = { dir, cert: join(dir, caFiles.cert), key: join(dir, caFiles.key) }
  if (!o.replace && existsSync(ca.key)) {
    throw new CertificateError(`${quoteInput(dir, 200)} already has a CA (${caFiles.key}): remove it or choose another folder`)
  }
  writableDir(dir)
  const state = join(dir, caFiles.state)
  rmSync(state, { recursive: true, force: true })
  mkdirSync(join(state, 'newcerts'), { recursive: true })
  writeFileSync(join(state, 'index.txt'), '')
  writeFileSync(join(state, 'openssl.cnf'), opensslConfig)
  writeKey(ca.key)
  // O is the trust domain, as Istio's self-signed root (O=cluster.local)
  await sign(
    dir,
    ca.key,
    ca.cert,
    `/O=${trustDomain}/CN=sidecar-lab root CA`,
    ['-selfsign', '-keyfile', ca.key, '-extensions', 'root'],
    o,
    defaultCaValidity,
  )
  return ca
}

/** The CA made by makeCa in dir, or an error saying to make it. */
export function loadCa(dir: string): Ca {
  const ca = { dir, cert: join(dir, caFiles.cert), key: join(dir, caFiles.key) }
  for (const f of [ca.cert, ca.key, join(dir, caFiles.state, 'openssl.cnf')]) {
    if (!existsSync(f)) throw new CertificateError(`${quoteInput(dir, 200)} has no CA (${f} is missing): make one with 'certs init' first`)
  }
  return ca
}

/** A workload certificate for one service account, written to dir: cert.pem, key.pem (0600), cert-chain.pem, root-cert.pem. */
export async function issueWorkload(ca: Ca, dir: string, o: WorkloadOptions): Promise<WorkloadIdentity> {
  const namespace = o.namespace ?? 'default'
  const trustDomain = o.trustDomain ?? defaultTrustDomain
  const problem = nameProblem('service account', o.serviceAccount) ?? nameProblem('namespace', namespace)
  if (problem) throw new CertificateError(problem)
  checkTrustDomain(trustDomain)
  period(o, defaultWorkloadValidity)
  writableDir(dir)
  const id = spiffeId(trustDomain, namespace, o.serviceAccount)
  const files = Object.fromEntries(Object.entries(workloadFiles).map(([k, f]) => [k, join(dir, f)])) as typeof workloadFiles
  writeKey(files.key)
  const args = ['-cert', ca.cert, '-keyfile', ca.key, '-extensions', 'workload']
  await sign(ca.dir, files.key, files.cert, '/', args, o, defaultWorkloadValidity, { SPIFFE_ID: id })
  const root = readFileSync(ca.cert, 'utf8')
  writeFileSync(files.chain, readFileSync(files.cert, 'utf8') + root)
  writeFileSync(files.root, root)
  return { ...files, spiffeId: id }
}

/**
 * The SPIFFE id of a certificate: its one spiffe:// URI SAN (SPIFFE's X.509-SVID allows exactly one).
 * Node prints the SANs as `URI:a, DNS:b`, quoting (JSON) a value that holds a comma or a quote.
 */
export function readIdentity(certPem: string | Buffer): string {
  const cert = new X509Certificate(certPem)
  const ids = sanEntries(cert.subjectAltName ?? '')
    .filter(([type, value]) => type === 'URI' && value.startsWith('spiffe://'))
    .map(([, value]) => value)
  if (ids.length === 0) throw new CertificateError('the certificate has no SPIFFE identity (no spiffe:// URI SAN)')
  if (ids.length > 1) throw new CertificateError(`the certificate has ${ids.length} SPIFFE identities; an X.509-SVID has one`)
  return ids[0]!
}

function sanEntries(text: string): [string, string][] {
  const out: [string, string][] = []
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g
  for (let m = re.exec(text); m && m[0] !== ''; m = re.exec(text)) {
    out.push([m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!])
  }
  return out
}
