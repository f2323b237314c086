// The sidecar's effective configuration, with Istio's and Envoy's defaults.
import { defaultDnsConfig, type DnsConfig } from '../dns/config.js'
import type { RegistryEntry } from '../registry/registry.js'

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY'
export type AccessLogFormat = 'text' | 'json'
/** Istio's inbound interception modes: NAT to 15006 (the app sees 127.0.0.6) or TPROXY (the app sees the client) */
export type InterceptionMode = 'REDIRECT' | 'TPROXY'
/** who moves a proxied connection's bytes: node:net (engines/node.ts) or the addon's thread (engines/native.ts) */
export const relayEngines = ['node', 'native'] as const
export type RelayEngine = (typeof relayEngines)[number]
/** The engine when --relay is not given: the sidecar's, the lab's, the demo's and the bench scripts' alike. */
export const defaultRelay: RelayEngine = 'native'

export interface ProxyConfig {
  /** address the listeners bind; '::' listens on IPv4 and IPv6 */
  bindAddress: string
  outboundPort: number
  inboundPort: number
  /** source address of inbound passthrough connections (Istio's 127.0.0.6 / ::6) */
  inboundSourceV4: string
  inboundSourceV6: string
  /** TPROXY: transparent inbound listener, upstream from the client's address with SO_MARK 1337 (src/proxy/transparent.ts) */
  interceptionMode: InterceptionMode
  relay: RelayEngine
  outboundTrafficPolicy: OutboundTrafficPolicy
  registry: RegistryEntry[]
  connectTimeoutMs: number
  /** 0 disables the idle timeout */
  idleTimeoutMs: number
  /** per-connection buffer limit: reading pauses while the other side holds more than this */
  bufferLimitBytes: number
  /** per listener; further connections are closed and counted as overflow */
  maxConnections: number
  drainMs: number
  /** exit as soon as no connection is active while draining (EXIT_ON_ZERO_ACTIVE_CONNECTIONS) */
  exitOnZeroActive: boolean
  /** uid/gid to switch to when started as root */
  uid: number
  gid: number
  accessLog: string | null
  accessLogFormat: AccessLogFormat
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Envoy's admin, on 127.0.0.1 only; 0 disables it (as do 0 for the three below) */
  adminPort: number
  /** GET /healthz/ready */
  healthPort: number
  /** Envoy's own /stats/prometheus */
  prometheusPort: number
  /** the agent's merged /stats/prometheus: the proxy's metrics plus the app's */
  mergedMetricsPort: number
  /** the app's own Prometheus endpoint, merged into mergedMetricsPort; null for none */
  appMetricsUrl: string | null
  /** the DNS proxy (src/dns/); port 0 disables it */
  dns: DnsConfig
}

export const defaultProxyConfig: ProxyConfig = {
  bindAddress: '::',
  outboundPort: 15001,
  inboundPort: 15006,
  inboundSourceV4: '127.0.0.6',
  inboundSourceV6: '::6',
  interceptionMode: 'REDIRECT',
  relay: defaultRelay,
  outboundTrafficPolicy: 'ALLOW_ANY',
  registry: [],
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  bufferLimitBytes: 1024 * 1024,
  maxConnections: 100_000,
  drainMs: 5_000,
  exitOnZeroActive: false,
  uid: 1337,
  gid: 1337,
  accessLog: '-',
  accessLogFormat: 'text',
  logLevel: 'info',
  adminPort: 15000,
  healthPort: 15021,
  prometheusPort: 15090,
  mergedMetricsPort: 15020,
  appMetricsUrl: null,
  dns: defaultDnsConfig,
}
