// The ztunnel stand-in: one process in the node's network namespace serving every pod added to it (ZDS's
// AddWorkload), each through listeners made inside that pod's namespace (pod-proxy.ts). It keeps ztunnel's
// workload manager's account (workload_manager_* metrics), the access log and Istio's TCP metrics.
import { closeSync, openSync } from 'node:fs'
import type { Logger } from '../logger.js'
import { LineWriter } from '../line-writer.js'
import type { ProxyConfig } from '../proxy/config.js'
import { FdBudget } from '../proxy/fd-budget.js'
import { startNativeRelay, stopNativeRelay } from '../proxy/engines/native.js'
import type { ConnectionRecord } from '../proxy/engines/record.js'
import type { ListenerKind } from '../proxy/clusters.js'
import { PodProxy, type MeshConfig, type PodInfo } from './pod-proxy.js'
import { accessFields, accessLine, TcpMetrics, trafficLabels, type WorkloadName } from './telemetry.js'

export interface ZtunnelOptions {
  /** the listeners' settings, the same for every pod (ports 15001/15006/15053, relay engine, timeouts) */
  proxy: ProxyConfig
  /** '-' for stdout, a path, or null for none */
  accessLog: string | null
  /** the workload table and identities: HBONE between mesh pods; none: everything plain */
  mesh?: MeshConfig | undefined
}

export class Ztunnel {
  readonly pods = new Map<string, PodProxy>()
  readonly metrics = new TcpMetrics()
  readonly counts = { started: 0, stopped: 0 }
  readonly #options: ZtunnelOptions
  readonly #log: Logger
  readonly #fdBudget: FdBudget
  readonly #access: LineWriter | null
  /** addresses seen on each pod's own side of its connections: the names the access log gives peers */
  readonly #addresses = new Map<string, WorkloadName>()
  /** a pod being added or removed: one change per uid at a time */
  readonly #changing = new Map<string, Promise<unknown>>()

  constructor(options: ZtunnelOptions, log: Logger) {
    this.#options = options
    this.#log = log
    this.#fdBudget = new FdBudget(log, { relayPipes: options.proxy.relay === 'native' })
    const path = options.accessLog
    this.#access = path === null ? null : new LineWriter(path === '-' ? 1 : openSync(path, 'a'))
  }

  start(): void {
    if (this.#options.proxy.relay === 'native') startNativeRelay(this.#options.proxy)
    this.#fdBudget.measure()
  }

  /** ZDS's AddWorkload: serve the pod. Takes ownership of netnsFd (closed on failure too). */
  add(info: PodInfo, netnsFd: number): Promise<void> {
    return this.#serial(info.uid, async () => {
      const existing = this.pods.get(info.uid)
      if (existing) {
        // a repeated add (a restarted agent's snapshot) keeps the running proxy and its connections
        this.#log.info({ uid: info.uid }, 'pod already served, keeping its proxy')
        closeQuietly(netnsFd)
        return
      }
      this.#log.info({ uid: info.uid, name: info.name, namespace: info.namespace }, 'pod received, starting proxy')
      const pod = new PodProxy(info, netnsFd, this.#options.proxy, this.#log, this.#fdBudget, this.#options.mesh)
      for (const l of pod.listeners) l.events.subscribe({ closed: (r) => this.#closed(l.kind, pod, r) })
      pod.hboneIn?.events.subscribe({ closed: (r) => this.#closed('inbound', pod, r) })
      try {
        await pod.start()
      } catch (err) {
        this.#log.error({ uid: info.uid, err }, 'failed to start proxy')
        throw err
      }
      this.pods.set(info.uid, pod)
      this.counts.started++
      const self: WorkloadName = { name: info.name, namespace: info.namespace }
      for (const address of pod.addresses) this.#addresses.set(address, self)
    })
  }

  /** ZDS's DelWorkload: stop serving the pod; its sockets close. */
  remove(uid: string): Promise<boolean> {
    return this.#serial(uid, async () => {
      const pod = this.pods.get(uid)
      if (!pod) return false
      this.#log.info({ uid }, 'pod delete request, shutting down proxy')
      this.pods.delete(uid)
      await pod.stop()
      this.counts.stopped++
      for (const [address, name] of this.#addresses)
        if (name.name === pod.info.name && name.namespace === pod.info.namespace) this.#addresses.delete(address)
      return true
    })
  }

  /** ZDS's SnapshotSent: pods not in the snapshot are gone (the agent restarted without them). */
  async reconcile(keep: ReadonlySet<string>): Promise<void> {
    this.#log.info({ pods: keep.size }, 'received snapshot sent')
    for (const uid of [...this.pods.keys()]) if (!keep.has(uid)) await this.remove(uid)
  }

  async stop(): Promise<void> {
    for (const uid of [...this.pods.keys()]) await this.remove(uid)
    stopNativeRelay()
    await this.#access?.flush(1000)
    this.#access?.close()
  }

  /** The workload manager's own metrics (istio/ztunnel src/inpod/metrics.rs: no istio_ prefix). */
  workloadMetrics(): string {
    return [
      '# TYPE workload_manager_active_proxy_count gauge',
      `workload_manager_active_proxy_count ${this.pods.size}`,
      '# TYPE workload_manager_pending_proxy_count gauge',
      `workload_manager_pending_proxy_count ${this.#changing.size}`,
      '# TYPE workload_manager_proxies_started_total counter',
      `workload_manager_proxies_started_total ${this.counts.started}`,
      '# TYPE workload_manager_proxies_stopped_total counter',
      `workload_manager_proxies_stopped_total ${this.counts.stopped}`,
      '',
    ].join('\n')
  }

  #closed(kind: ListenerKind, pod: PodProxy, r: ConnectionRecord): void {
    const self: WorkloadName = { name: pod.info.name, namespace: pod.info.namespace }
    // the pod's own side: outbound, the caller (the app); inbound, the address it was reached at
    const own = kind === 'outbound' ? r.downstreamRemote : r.downstreamLocal
    if (own) this.#addresses.set(own.address, self)
    const peerAddress = kind === 'outbound' ? (r.upstream?.host ?? r.downstreamLocal)?.address : r.downstreamRemote?.address
    const peer =
      peerAddress === undefined ? undefined : (this.#addresses.get(peerAddress) ?? this.#options.mesh?.table.byAddress(peerAddress))
    const mesh = pod.mesh.get(r.id)
    pod.mesh.delete(r.id)
    this.metrics.record(trafficLabels(kind, pod.info, r, peer, mesh), r)
    this.#access?.write(accessLine(r.startTime, r.flags.length > 0, accessFields(kind, pod.info, r, peer, mesh)) + '\n')
  }

  async #serial<T>(uid: string, change: () => Promise<T>): Promise<T> {
    const before = this.#changing.get(uid) ?? Promise.resolve()
    const next = before.catch(() => {}).then(change)
    this.#changing.set(uid, next)
    try {
      return await next
    } finally {
      if (this.#changing.get(uid) === next) this.#changing.delete(uid)
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed
  }
}
