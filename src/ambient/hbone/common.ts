// What the HBONE server and client share: the mesh identity of a certificate (its SPIFFE URI SAN), the TLS
// settings both sides use, the CONNECT authority's form, ztunnel's request headers and the limits. HBONE is
// an HTTP/2 CONNECT tunnel over mutual TLS with mesh (SPIFFE) certificates on 15008, the target in :authority
// (istio/istio architecture/ambient/ztunnel.md, "HBONE").
import { randomBytes, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { SidecarError } from '../../errors.js'

/** An address and port: the tunnel's target (:authority) or the peer's 15008 (via). */
export interface HostPort {
  address: string
  port: number
}

/** A pod's mesh identity: its certificate and key (PEM) and the CA that signed every pod's certificate. */
export interface HboneIdentity {
  cert: string | Buffer
  key: string | Buffer
  ca: string | Buffer
}

/** Why an HBONE tunnel failed; `reason` is stable for tests and counters, the message names the peer. */
export type HboneFailure =
  | 'tls' // handshake failed: certificate not trusted, expired, missing
  | 'identity' // the server's URI SAN is not the one expected
  | 'alpn' // the peer did not agree on h2
  | 'status' // the CONNECT was answered with something else than 200
  | 'session' // the HTTP/2 session failed or went away before the answer
  | 'certificate' // our own certificate has no SPIFFE identity

export class HboneError extends SidecarError {
  readonly reason: HboneFailure
  /** the :status the server answered, for reason 'status' */
  readonly status: number | undefined
  constructor(reason: HboneFailure, message: string, options?: { cause?: unknown; status?: number }) {
    super('SIDECAR_ERR_HBONE', message, options)
    this.reason = reason
    this.status = options?.status
  }
}

/**
 * ztunnel's limits (src/config.rs): HTTP2_STREAM_WINDOW_SIZE 4 MiB, HTTP2_CONNECTION_WINDOW_SIZE 16 MiB,
 * HTTP2_FRAME_SIZE 1 MiB; the client's POOL_MAX_STREAMS_PER_CONNECTION 100 and POOL_UNUSED_RELEASE_TIMEOUT
 * 5 minutes; the server's max_concurrent_streams 200 (src/proxy/h2/server.rs).
 */
export const HBONE_LIMITS = {
  streamWindow: 4 * 1024 * 1024,
  connectionWindow: 16 * 1024 * 1024,
  frameSize: 1024 * 1024,
  clientMaxStreamsPerSession: 100,
  serverMaxConcurrentStreams: 200,
  idleSessionMs: 5 * 60 * 1000,
  /** ztunnel's server: max_header_list_size 64 KiB */
  maxHeaderListSize: 65536,
  /** how long a TLS + HTTP/2 handshake or a CONNECT answer may take; ztunnel has none of its own, Node waits forever */
  handshakeMs: 10_000,
  /** ztunnel's client pings each session (src/proxy/h2.rs do_ping_pong): first after 10 s, then 10 s after each answer */
  pingIntervalMs: 10_000,
  /** ... and drops a session whose ping is not answered in 20 s (its tunnels are reset) */
  pingTimeoutMs: 20_000,
} as const

/** TLS 1.3 only, as ztunnel unless TLS12_ENABLED=true (src/tls/lib.rs tls_versions); ALPN h2 only (src/tls/certificate.rs). */
export const HBONE_TLS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ALPNProtocols: ['h2'] } as const

/** The spiffe:// URI SANs of a certificate, in order. */
export function spiffeIds(cert: X509Certificate | undefined): string[] {
  const san = cert?.subjectAltName
  if (!san) return []
  // Node writes "URI:spiffe://…, DNS:…"; a value with a comma or quote comes JSON-quoted
  return san
    .split(/, (?=[A-Za-z ]+:)/)
    .map((entry) => {
      const value = entry.slice(entry.indexOf(':') + 1)
      return entry.startsWith('URI:') ? (value.startsWith('"') ? (JSON.parse(value) as string) : value) : ''
    })
    .filter((v) => v.startsWith('spiffe://'))
}

/** The identity a PEM certificate asserts (its first SPIFFE URI SAN); an error naming the problem without one. */
export function identityOfPem(pem: string | Buffer): string {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch (err) {
    throw new HboneError('certificate', `HBONE: the certificate is not a PEM X.509 certificate: ${(err as Error).message}`)
  }
  const [id] = spiffeIds(cert)
  if (!id) throw new HboneError('certificate', `HBONE: the certificate (${cert.subject.replace(/\n/g, ', ')}) has no spiffe:// URI SAN`)
  return id
}

/** `ip:port`, `[v6]:port` as ztunnel writes :authority (Rust's SocketAddr Display). */
export function formatAuthority(t: HostPort): string {
  return isIP(t.address) === 6 ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`
}

/**
 * Reads :authority as ztunnel does (src/proxy.rs HboneAddress::try_from): an ip:port, else a host:port (a
 * service hostname); null when it has no host or no valid port (ztunnel answers 400 then).
 */
export function parseAuthority(authority: string | undefined): HostPort | null {
  if (!authority) return null
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(authority) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(authority)
  if (!m) return null
  const [, address = '', digits = ''] = m
  const port = Number(digits)
  if (port < 1 || port > 65535) return null
  if (authority.startsWith('[') && isIP(address) !== 6) return null
  return { address, port }
}

/** A W3C traceparent as ztunnel sends one per tunnel (src/proxy.rs TraceParent: version 0, random ids, flags 0). */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`
}

/** What ztunnel puts in baggage about the source workload (src/baggage.rs baggage_header_val). */
export interface Baggage {
  clusterId?: string
  namespace?: string
  workloadName?: string
  /** deployment, pod, …: the key is k8s.<type>.name */
  workloadType?: string
  serviceName?: string
  revision?: string
  region?: string
  zone?: string
}

export function baggageHeader(b: Baggage): string {
  return [
    b.clusterId && `k8s.cluster.name=${b.clusterId}`,
    b.namespace && `k8s.namespace.name=${b.namespace}`,
    b.workloadName && `k8s.${b.workloadType ?? 'deployment'}.name=${b.workloadName}`,
    b.serviceName && `service.name=${b.serviceName}`,
    b.revision && `service.version=${b.revision}`,
    b.region && `cloud.region=${b.region}`,
    b.zone && `cloud.availability_zone=${b.zone}`,
  ]
    .filter(Boolean)
    .join(',')
}
