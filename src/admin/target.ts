// What the admin endpoints need from the proxy. The Sidecar provides all of it; tests give a stand-in.
import type { Logger } from '../logger.js'
import type { ListenerKind } from '../proxy/clusters.js'
import type { ProxyConfig } from '../proxy/config.js'
import type { DrainOptions, ServerState } from '../proxy/sidecar.js'
import type { Stats } from '../stats/stats.js'

export interface AdminListener {
  readonly name: string
  readonly kind: ListenerKind
  readonly port: number
}

export interface AdminTarget {
  readonly config: ProxyConfig
  readonly stats: Stats
  readonly listeners: readonly AdminListener[]
  readonly state: ServerState
  readonly startTime: Date
  failHealthcheck(fail: boolean): void
  drainListeners(options: DrainOptions): Promise<void>
  loggers(): Record<string, Logger>
  /** the agent's own metrics in Prometheus text (the DNS proxy's istio_agent_dns_*), for 15020 */
  agentMetrics?(): string
}

export interface AdminControl {
  /** /quitquitquit: stop the proxy the way SIGTERM does */
  quit(): void
}
