// One captured connection relayed by the addon's engine (native/relay.c, --relay native): the twin of
// ProxiedConnection (connection.ts), publishing the same events with the same meanings. Node keeps the
// routing and the bookkeeping; the relay thread dials the upstream and moves the bytes, and reports back
// connected, failed, idle and closed (with byte counts and a typed close that ledger.ts names, as for the
// node engine).
import type { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'
import {
  relayAbort,
  relayAdd,
  relayStart,
  relayStop,
  relayTcpInfo,
  type RelayClosed,
  type RelayDown,
  type RelayEvent,
} from '../../native/relay.js'
import { socketFd } from '../../native/sockopt.js'
import { closeFd } from '../../native/acceptor.js'
import type { ListenerKind } from '../clusters.js'
import type { ProxyConfig } from '../config.js'
import type { Endpoint } from '../../net/address.js'
import { fileLimits, relayPipesFor } from '../fd-budget.js'
import {
  ConnectionLedger,
  connectFailure,
  upstreamSource,
  type ConnectionContext,
  type PassthroughRoute,
  type RelayClose,
} from './ledger.js'
import type { LoopOwner, TrackedUpstream, UpstreamProbe } from '../loop-guard.js'
import type { TcpInfo } from '../../native/sockopt.js'

const ignore = () => {}

// One relay thread per process, started by the sidecar (or the first connection) with the settings both
// listeners share.
const owners = new Map<number, NativeConnection>()
let started = false
const downListeners = new Set<(down: RelayDown) => void>()

export function startNativeRelay(config: Pick<ProxyConfig, 'bufferLimitBytes' | 'connectTimeoutMs' | 'idleTimeoutMs'>): void {
  if (started) return
  relayStart(
    (events) => {
      for (const e of events) owners.get(e.id)?.onRelayEvent(e)
    },
    {
      bufferLimitBytes: config.bufferLimitBytes,
      connectTimeoutMs: config.connectTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      // the descriptors the budget sets aside for them (fd-budget.ts)
      maxPipes: relayPipesFor(fileLimits()?.soft ?? Number.POSITIVE_INFINITY),
    },
    engineDown,
  )
  started = true
}

/** Calls fn should the relay engine go down (the sidecar's cue to stop); returns the unsubscribe. */
export function onNativeRelayDown(fn: (down: RelayDown) => void): () => void {
  downListeners.add(fn)
  return () => downListeners.delete(fn)
}

/**
 * The thread reset every connection it held and sends nothing more: each closes here, typed, or it would stay
 * in its listener's active set and its descriptors in the budget for good. The engine stays down (relayAdd
 * throws ENOTCONN, a failed connect) until stopNativeRelay.
 */
function engineDown(down: RelayDown): void {
  const open = [...owners.values()]
  owners.clear()
  for (const conn of open) conn.onEngineDown()
  for (const fn of downListeners) fn(down)
}

/** Stops the relay thread (the sidecar's exit; tests). Connections still open are closed without events. */
export function stopNativeRelay(): void {
  if (!started) return
  relayStop()
  started = false
  owners.clear()
}

/**
 * relayAbort, except on an engine that went down (ENOTCONN): the thread reset the connection already, and its
 * down notice, on its way to this thread, closes it here.
 */
function abortRelay(id: number, how: 'reset' | 'looped'): void {
  try {
    relayAbort(id, how)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') throw err
  }
}

/** The relay's typed close as the ledger takes it (the errno by name, as node:net reports a socket's error). */
export function relayClose(e: RelayClosed): RelayClose {
  if (e.close !== 'error') return { kind: e.close }
  return { kind: 'error', side: e.side, code: e.errno > 0 ? getSystemErrorName(-e.errno) : undefined }
}

/**
 * The connections added since the last check phase: one pair of immediates per batch, not per connection, clears
 * their #fresh in the check phase of the turn after (what setImmediate(() => setImmediate(...)) does for each).
 */
let freshBatch: NativeConnection[] = []

function markFresh(conn: NativeConnection): void {
  if (freshBatch.push(conn) > 1) return
  setImmediate(() => {
    const batch = freshBatch
    freshBatch = []
    setImmediate(() => NativeConnection.settle(batch))
  })
}

export class NativeConnection implements LoopOwner, UpstreamProbe {
  readonly #ctx: ConnectionContext
  readonly #ledger: ConnectionLedger
  #tracked: TrackedUpstream | undefined
  /** from relayAdd until the check phase of the turn after (#track) */
  #fresh = true
  /** relayAdd's answer: the upstream socket's address once connect(2) bound it */
  #local: Endpoint | undefined

  /** downstream: a node:net socket (its fd is dup()ed), or an fd of the native acceptor's, which the relay takes */
  constructor(ctx: ConnectionContext, downstream: Socket | number, route: PassthroughRoute, downstreamRemote: Endpoint | undefined) {
    this.#ctx = ctx
    this.#ledger = new ConnectionLedger(ctx, route, downstreamRemote)
    const owned = typeof downstream === 'number'
    if (!owned) downstream.on('error', ignore)
    let local: Endpoint
    try {
      startNativeRelay(ctx.config)
      const fd = owned ? downstream : socketFd(downstream)
      local = relayAdd(this.id, fd, route.destination, upstreamSource(ctx, route.destination, downstreamRemote), { owned })
    } catch (err) {
      this.#addFailed(downstream, err as NodeJS.ErrnoException)
      return
    }
    this.#local = local
    owners.set(this.id, this)
    this.#tracked = this.#track(local)
    // The relay holds its own descriptor now. A plain destroy closes node's: resetAndDestroy's SO_LINGER
    // would act on the socket both descriptors share. (The closures made here live in methods of their own:
    // one sharing the constructor's scope would keep the destroyed Socket alive with the connection.)
    if (!owned) downstream.destroy()
  }

  get id(): number {
    return this.#ledger.id
  }

  /**
   * A socket that could not be made or bound (EMFILE, EADDRNOTAVAIL, EPERM): node:net reports those as the
   * connect's error, and so does this engine. Nothing was relayed: a plain close of the client.
   */
  #addFailed(downstream: Socket | number, err: NodeJS.ErrnoException): void {
    this.#ledger.failed(connectFailure(err), err)
    const close = () => this.#ledger.close({ rx: 0, tx: 0 }, { rx: 0, tx: 0 })
    if (typeof downstream === 'number') {
      closeFd(downstream)
      // after the listener took the connection into its active set, as a socket's 'close' comes
      process.nextTick(close)
      return
    }
    downstream.once('close', close)
    downstream.destroy()
  }

  /**
   * The loop guard's rule 3 for this engine: the relay thread completes connects on its own clock, so its
   * 'connected' event can reach this thread any number of turns later, and an app connection that NAT gave
   * this upstream's port would pass for a loop all that while (seen: 2 of 20,000 in the NAT-clash fault
   * test). A looped hop needs no such wait: the kernel completes its handshake with our own listener during
   * connect(2) itself, so it is in the accept queue at the next poll. The upstream counts as "connecting"
   * from relayAdd through the next turn's poll phase (cleared in that turn's check phase). The connection is
   * its own probe (no closures per connection: memory per idle connection, issue 18).
   */
  #track(local: Endpoint): TrackedUpstream {
    markFresh(this)
    return this.#ctx.loopGuard.trackUpstream(local, this.#ledger.route.destination, this, this)
  }

  get connecting(): boolean {
    return this.#fresh && !this.#ledger.closed
  }

  tcpInfo(): TcpInfo | undefined {
    return relayTcpInfo(this.id)
  }

  /** markFresh's batch is over */
  static settle(conns: readonly NativeConnection[]): void {
    for (const c of conns) c.#fresh = false
  }

  onRelayEvent(e: RelayEvent): void {
    switch (e.type) {
      case 'connected':
        // not tracked.connected(): the event's turn says nothing about when the kernel connected (above)
        this.#ledger.connected(this.#local)
        break
      case 'failed':
        this.#ledger.failed(e.timeout ? { timeout: true } : { timeout: false, errno: e.errno, code: getSystemErrorName(-e.errno) })
        break
      case 'idle':
        this.#ledger.idleTimeout()
        break
      case 'flow': {
        const flow = this.#ctx.flow(this.#ledger.route.cluster)
        if (e.paused) flow.paused.inc(e.paused)
        if (e.resumed) flow.resumed.inc(e.resumed)
        break
      }
      case 'closed':
        this.#onClosed(e)
        break
    }
  }

  get listenerKind(): ListenerKind {
    return this.#ctx.kind
  }

  onUpstreamLooped(): void {
    this.#ledger.looped()
    if (!this.#ledger.closed) abortRelay(this.id, 'looped')
  }

  /** Resets both sides now (end of drain). */
  abort(): void {
    if (!this.#ledger.closed && owners.has(this.id)) abortRelay(this.id, 'reset')
  }

  onEngineDown(): void {
    this.#tracked?.closed()
    this.#ledger.ended({ kind: 'engine_down' })
    this.#ledger.close({ rx: 0, tx: 0 }, { rx: 0, tx: 0 })
  }

  #onClosed(e: RelayClosed): void {
    owners.delete(this.id)
    this.#tracked?.closed()
    this.#ledger.ended(relayClose(e))
    this.#ledger.close({ rx: e.downstreamRx, tx: e.downstreamTx }, { rx: e.upstreamRx, tx: e.upstreamTx })
  }
}
