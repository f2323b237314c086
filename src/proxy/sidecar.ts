// The sidecar process: both virtual listeners, shared stats, loop guard and access log, and the drain
// sequence Istio runs on SIGTERM.
import { setTimeout as sleep } from 'node:timers/promises'
import { getSystemErrorName } from 'node:util'
import { DnsServer } from '../dns/server.js'
import { RelayEngineDownError } from '../errors.js'
import type { Logger } from '../logger.js'
import { ensureAddon } from '../native/sockopt.js'
import { checkTransparentCapability } from './transparent.js'
import { createAccessLog, type AccessLogSink } from './access-log.js'
import type { ProxyConfig } from './config.js'
import { FdBudget } from './fd-budget.js'
import { identityOf, VirtualListener } from './listener.js'
import { LoopGuard } from './loop-guard.js'
import { MisdirectedLog } from './misdirected.js'
import { onNativeRelayDown, startNativeRelay, stopNativeRelay } from './engines/native.js'
import { relayStats, type RelayDown } from '../native/relay.js'
import { keepYoungGenerationSize } from './young-generation.js'
import { Registry } from '../registry/registry.js'
import { Stats } from '../stats/stats.js'

/** Envoy's server states as /ready and /server_info name them. */
export type ServerState = 'PRE_INITIALIZING' | 'LIVE' | 'DRAINING'

export interface DrainOptions {
  /** only virtualInbound (Envoy's ?inboundonly) */
  inboundOnly: boolean
  /** open connections get the drain period to finish instead of being closed now */
  graceful: boolean
}

export class Sidecar {
  readonly config: ProxyConfig
  readonly stats = new Stats()
  readonly listeners: VirtualListener[]
  /** the DNS proxy on 15053, or null when --dns-port 0 */
  readonly dns: DnsServer | null
  readonly startTime = new Date()
  readonly #log: Logger
  readonly #accessLog: AccessLogSink
  #started = false
  #draining = false
  #listenersDrained = false
  #healthCheckFailed = false
  #engineFailure: RelayEngineDownError | undefined
  #offEngineDown = () => {}
  #onFailure: (err: RelayEngineDownError) => void = () => {}
  /** Settles (never rejects) with the reason the sidecar cannot go on: the native relay engine went down. */
  readonly failure = new Promise<RelayEngineDownError>((resolve) => (this.#onFailure = resolve))

  constructor(config: ProxyConfig, log: Logger, accessLog?: AccessLogSink) {
    this.config = config
    this.#log = log
    this.#accessLog = accessLog ?? createAccessLog(config.accessLog, config.accessLogFormat, { stats: this.stats, log })
    const fdBudget = new FdBudget(log, { relayPipes: config.relay === 'native' })
    const deps = {
      config,
      stats: this.stats,
      log,
      loopGuard: new LoopGuard(),
      accessLog: this.#accessLog,
      fdBudget,
      misdirected: new MisdirectedLog(log, this.stats, identityOf(config)),
      router: {
        outboundPort: config.outboundPort,
        inboundPort: config.inboundPort,
        policy: config.outboundTrafficPolicy,
        registry: new Registry(config.registry),
      },
    }
    this.listeners = [new VirtualListener('outbound', deps), new VirtualListener('inbound', deps)]
    this.dns =
      config.dns.port === 0 ? null : new DnsServer(config.dns, config.registry, this.stats, log.child({ component: 'dns' }), fdBudget)
  }

  get draining(): boolean {
    return this.#draining || this.#listenersDrained
  }

  /**
   * LIVE once the listeners are bound; DRAINING while draining, after /healthcheck/fail, as in Envoy, and once
   * the native relay engine went down.
   */
  get state(): ServerState {
    if (!this.#started) return 'PRE_INITIALIZING'
    return this.draining || this.#healthCheckFailed || this.#engineFailure ? 'DRAINING' : 'LIVE'
  }

  failHealthcheck(fail: boolean): void {
    this.#healthCheckFailed = fail
    this.#log.info({ fail }, fail ? 'health checks set to fail' : 'health checks set to pass')
  }

  /** Every logger the sidecar writes through, by name, so the admin can change their levels together. */
  loggers(): Record<string, Logger> {
    const dns = this.dns ? [['dns', this.dns.log] as const] : []
    return Object.fromEntries([['sidecar', this.#log], ...this.listeners.map((l) => [l.name, l.log] as const), ...dns])
  }

  /** Istio's agent serves its DNS metrics with this prefix on the merged-metrics port. */
  agentMetrics(): string {
    return this.dns?.metrics.prometheus('istio_agent_') ?? ''
  }

  get activeConnections(): number {
    return this.listeners.reduce((n, l) => n + l.activeConnections, 0)
  }

  async start(): Promise<void> {
    ensureAddon()
    // Its thread, epoll fd and eventfd now: a missing engine fails the start, and the descriptors the sidecar
    // holds once ready are its baseline.
    if (this.config.relay === 'native') {
      keepYoungGenerationSize()
      startNativeRelay(this.config)
      this.#offEngineDown = onNativeRelayDown((down) => this.#engineDown(down))
      // the most pipes it holds at once, set aside in the descriptor budget (fd-budget.ts)
      const pipes = this.stats.gauge('sidecar.relay_pipes_max')
      pipes.value = relayStats().pipesMax
      pipes.used = true
    }
    if (this.config.interceptionMode === 'TPROXY') checkTransparentCapability()
    try {
      for (const l of this.listeners) await l.listen()
      await this.dns?.start()
    } catch (err) {
      await Promise.all(this.listeners.map((l) => l.stopAccepting()))
      await this.dns?.close()
      throw err
    }
    this.#started = true
    this.#log.info(
      {
        listeners: this.listeners.map((l) => `${l.name}:${l.port}`),
        interceptionMode: this.config.interceptionMode,
        uid: process.getuid?.(),
        gid: process.getgid?.(),
        relay: this.config.relay,
      },
      `sidecar ready (relay engine: ${this.config.relay})`,
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
    await this.#stopAccepting(this.listeners)
    // A down engine reset every connection it had: nothing is left to wait for.
    await this.#finish(this.listeners, this.#engineFailure ? 0 : this.config.drainMs)
    // every connection is closed (or given up on): the relay thread has nothing left to do
    this.#offEngineDown()
    stopNativeRelay()
    // DNS answers through the drain: the app's last connections may still need names.
    await this.dns?.close()
    // bounded: a log that cannot be written (full disk) must not hold up the exit
    await this.#accessLog.close()
    this.#log.info('drained')
  }

  /**
   * The admin's /drain_listeners: the same machinery on some listeners, without exiting. Resolves once
   * they stopped accepting; open connections finish in the background. A TCP proxy has no way to ask a
   * client to go away (no GOAWAY or Connection: close), so without graceful they are closed at once.
   */
  async drainListeners(options: DrainOptions): Promise<void> {
    this.#listenersDrained = true
    const chosen = this.listeners.filter((l) => !options.inboundOnly || l.kind === 'inbound')
    await this.#stopAccepting(chosen)
    void this.#finish(chosen, options.graceful ? this.config.drainMs : 0)
  }

  /** Readiness fails, the listeners stop accepting, and `failure` tells the command to exit non-zero. */
  #engineDown(down: RelayDown): void {
    if (this.#engineFailure) return
    const code = down.errno > 0 ? getSystemErrorName(-down.errno) : undefined
    this.#engineFailure = new RelayEngineDownError(down.reason, code)
    this.stats.counter('sidecar.relay_engine_down').inc()
    this.#log.error({ reason: down.reason, errno: down.errno, code }, this.#engineFailure.message)
    void this.#stopAccepting(this.listeners)
    this.#onFailure(this.#engineFailure)
  }

  async #stopAccepting(listeners: VirtualListener[]): Promise<void> {
    await Promise.all(listeners.map((l) => l.stopAccepting()))
    const active = listeners.reduce((n, l) => n + l.activeConnections, 0)
    this.#log.info({ listeners: listeners.map((l) => l.name), active, drainMs: this.config.drainMs }, 'draining: listeners closed')
  }

  async #finish(listeners: VirtualListener[], periodMs: number): Promise<void> {
    const timeout = new AbortController()
    const idle = Promise.all(listeners.map((l) => l.idle()))
    const period = sleep(periodMs, undefined, { signal: timeout.signal }).catch(() => {})
    await (this.config.exitOnZeroActive ? Promise.race([idle, period]) : period)
    timeout.abort()
    const left = listeners.reduce((n, l) => n + l.activeConnections, 0)
    if (left > 0) this.#log.warn({ left }, 'drain period over: closing remaining connections')
    for (const l of listeners) l.abortAll()
    await Promise.race([Promise.all(listeners.map((l) => l.idle())), sleep(1000)])
  }
}
