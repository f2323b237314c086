// One connection's life as plain data: the events a connection publishes (opened, connected, failed, idle
// timeout, closed with one record) and the channel observers subscribe to (undici's diagnostics_channel is
// the model: producers publish, consumers subscribe, neither imports the other). Nothing here holds a
// node:net object, so the native relay engine can produce the same records.
import type { AccessLogEntry } from '../access-log.js'
import { formatEndpoint, type Endpoint } from '../../net/address.js'
import { formatResponseFlags, type ResponseFlag } from '../response-flags.js'

/** How the listener disposed of an accepted connection. */
export type Disposition =
  /** handed to a passthrough cluster: an upstream is dialled */
  | 'proxied'
  /** routed to BlackHoleCluster (not redirected, the listener's own port, REGISTRY_ONLY) */
  | 'blackholed'
  /** the proxy's own upstream connection captured back into the listener */
  | 'looped'

export interface OpenedEvent {
  id: number
  disposition: Disposition
  cluster: string
  serviceName: string
  /** the blackhole's flag (NR / UH); none for a proxied connection */
  flags: readonly ResponseFlag[]
}

export interface ConnectedEvent {
  id: number
  cluster: string
  upstreamLocal: Endpoint | undefined
}

export interface FailedEvent {
  id: number
  cluster: string
  /** Envoy's upstream transport failure reason (connect_timeout, delayed_connect_error:_111) */
  reason: string
  timeout: boolean
  /** errno name of the failed connect ('EMFILE', 'ECONNREFUSED'), when there was one */
  code?: string
}

export interface IdleEvent {
  id: number
  cluster: string
}

export interface ByteCounts {
  /** bytes read from the peer */
  rx: number
  /** bytes written to the peer */
  tx: number
}

/** Everything known about one connection at close: the only input of the statistics and the access log. */
export interface ConnectionRecord {
  id: number
  disposition: Disposition
  startTime: Date
  durationMs: number
  cluster: string
  serviceName: string
  flags: readonly ResponseFlag[]
  /** Envoy's connection_termination_details ('' when the connection ended normally) */
  terminationDetails: string
  /** Envoy's upstream_transport_failure_reason ('' when the upstream connected) */
  failureReason: string
  downstreamRemote: Endpoint | undefined
  /** the original destination (or the listener's address when there was none) */
  downstreamLocal: Endpoint | undefined
  downstream: ByteCounts
  /** absent when no upstream was dialled */
  upstream?: { host: Endpoint; local: Endpoint | undefined; bytes: ByteCounts }
}

export interface ConnectionObserver {
  opened(e: OpenedEvent): void
  connected(e: ConnectedEvent): void
  failed(e: FailedEvent): void
  idleTimeout(e: IdleEvent): void
  closed(record: ConnectionRecord): void
}

/** Fans each event out to its subscribers, in the order they subscribed. */
export class ConnectionChannel implements ConnectionObserver {
  readonly #subscribers: Partial<ConnectionObserver>[] = []

  subscribe(observer: Partial<ConnectionObserver>): () => void {
    this.#subscribers.push(observer)
    return () => {
      const i = this.#subscribers.indexOf(observer)
      if (i >= 0) this.#subscribers.splice(i, 1)
    }
  }

  opened(e: OpenedEvent): void {
    for (const s of this.#subscribers) s.opened?.(e)
  }

  connected(e: ConnectedEvent): void {
    for (const s of this.#subscribers) s.connected?.(e)
  }

  failed(e: FailedEvent): void {
    for (const s of this.#subscribers) s.failed?.(e)
  }

  idleTimeout(e: IdleEvent): void {
    for (const s of this.#subscribers) s.idleTimeout?.(e)
  }

  closed(record: ConnectionRecord): void {
    for (const s of this.#subscribers) s.closed?.(record)
  }
}

let lastId = 0

/** Process-wide connection ids, shared by both listeners. */
export function nextConnectionId(): number {
  return ++lastId
}

/** The one place a record becomes an access-log entry. */
export function accessLogEntry(r: ConnectionRecord): AccessLogEntry {
  return {
    startTime: r.startTime,
    responseFlags: formatResponseFlags(r.flags),
    connectionTerminationDetails: r.terminationDetails,
    upstreamTransportFailureReason: r.failureReason,
    bytesReceived: r.downstream.rx,
    bytesSent: r.downstream.tx,
    durationMs: r.durationMs,
    upstreamHost: r.upstream ? formatEndpoint(r.upstream.host) : '-',
    upstreamCluster: r.cluster,
    upstreamLocalAddress: formatEndpoint(r.upstream?.local),
    downstreamLocalAddress: formatEndpoint(r.downstreamLocal),
    downstreamRemoteAddress: formatEndpoint(r.downstreamRemote),
  }
}
