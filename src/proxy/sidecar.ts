// The sidecar process: both virtual listeners, shared stats, loop guard and access log, and the drain
// sequence Istio runs on SIGTERM.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.js'
import { ensureAddon } from '../native/sockopt.js'
import { createAccessLog, type AccessLogSink } from './access-log.js'
import type { ProxyConfig } from './config.js'
import { VirtualListener } from './listener.js'
import { LoopGuard } from './loop-guard.js'
import { Registry } from './registry.js'
import { Stats } from './stats.js'

export class Sidecar {
  readonly config: ProxyConfig
  readonly stats = new Stats()
  readonly listeners: VirtualListener[]
  readonly #log: Logger
  readonly #accessLog: AccessLogSink
  #draining = false

  constructor(config: ProxyConfig, log: Logger, accessLog?: AccessLogSink) {
    this.config = config
    this.#log = log
    this.#accessLog = accessLog ?? createAccessLog(config.accessLog, config.accessLogFormat)
    const deps = {
      config,
      stats: this.stats,
      log,
      loopGuard: new LoopGuard(),
      accessLog: this.#accessLog,
      router: {
        outboundPort: config.outboundPort,
        inboundPort: config.inboundPort,
        policy: config.outboundTrafficPolicy,
        registry: new Registry(config.registry),
      },
    }
    this.listeners = [new VirtualListener('outbound', deps), new VirtualListener('inbound', deps)]
  }

  get draining(): boolean {
    return this.#draining
  }

  get activeConnections(): number {
    return this.listeners.reduce((n, l) => n + l.activeConnections, 0)
  }

  async start(): Promise<void> {
    ensureAddon()
    try {
      for (const l of this.listeners) await l.listen()
    } catch (err) {
      await Promise.all(this.listeners.map((l) => l.stopAccepting()))
      throw err
    }
    this.#log.info(
      { listeners: this.listeners.map((l) => `${l.name}:${l.port}`), uid: process.getuid?.(), gid: process.getgid?.() },
      'sidecar ready',
    )
  }

  reopenAccessLog(): void {
    this.#accessLog.reopen()
  }

  /**
   * Stop accepting (new connections are refused by the kernel), let open ones finish for the drain period
   * (or until none is left with exitOnZeroActive), then reset the rest.
   */
  async drain(): Promise<void> {
    if (this.#draining) return
    this.#draining = true
    await Promise.all(this.listeners.map((l) => l.stopAccepting()))
    const active = this.activeConnections
    this.#log.info({ active, drainMs: this.config.drainMs }, 'draining: listeners closed')
    const timeout = new AbortController()
    const idle = Promise.all(this.listeners.map((l) => l.idle()))
    const period = sleep(this.config.drainMs, undefined, { signal: timeout.signal }).catch(() => {})
    await (this.config.exitOnZeroActive ? Promise.race([idle, period]) : period)
    timeout.abort()
    const left = this.activeConnections
    if (left > 0) this.#log.warn({ left }, 'drain period over: closing remaining connections')
    for (const l of this.listeners) l.abortAll()
    await Promise.race([Promise.all(this.listeners.map((l) => l.idle())), sleep(1000)])
    this.#accessLog.flush()
    this.#log.info('drained')
  }
}
