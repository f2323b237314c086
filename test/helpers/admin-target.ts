// A stand-in for the Sidecar behind the admin endpoints: real Stats and config, recorded calls.
import { silentLogger } from '../../src/logger.js'
import type { AdminTarget } from '../../src/admin/target.js'
import { defaultProxyConfig, type ProxyConfig } from '../../src/proxy/config.js'
import type { DrainOptions, ServerState } from '../../src/proxy/sidecar.js'
import { Stats } from '../../src/stats/stats.js'

export class FakeTarget implements AdminTarget {
  readonly config: ProxyConfig
  readonly stats = new Stats()
  readonly listeners = [
    { name: 'virtualOutbound', kind: 'outbound' as const, port: 15001 },
    { name: 'virtualInbound', kind: 'inbound' as const, port: 15006 },
  ]
  readonly startTime = new Date(Date.now() - 42_000)
  readonly drains: DrainOptions[] = []
  readonly #loggers = { sidecar: silentLogger.child({}), virtualOutbound: silentLogger.child({}) }
  live = true
  healthFailed = false

  constructor(config: Partial<ProxyConfig> = {}) {
    this.config = { ...defaultProxyConfig, relay: 'node', ...config }
  }

  get state(): ServerState {
    if (!this.live) return 'PRE_INITIALIZING'
    return this.healthFailed || this.drains.length ? 'DRAINING' : 'LIVE'
  }

  failHealthcheck(fail: boolean): void {
    this.healthFailed = fail
  }

  async drainListeners(options: DrainOptions): Promise<void> {
    this.drains.push(options)
  }

  loggers() {
    return this.#loggers
  }
}
