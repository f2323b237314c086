// The only importer of the addon's relay engine (native/relay.c): typed calls, errors as node-style errno
// exceptions (code, errno, syscall) as in sockopt.ts.
import { AddonLoadError } from '../errors.js'
import { addonPath, loadAddon } from './addon.js'
import type { SocketAddress, TcpInfo } from './sockopt.js'

export interface RelayOptions {
  bufferLimitBytes: number
  connectTimeoutMs: number
  /** 0: no idle timeout */
  idleTimeoutMs: number
  /** pipes held at once, pooled ones included (two descriptors each); beyond them read/write. None: no limit */
  maxPipes?: number
}

export interface RelayBind {
  /** the upstream socket's source address (127.0.0.6 / ::6 inbound, the client's in TPROXY mode) */
  address?: string
  /** IP_TRANSPARENT / IPV6_TRANSPARENT before bind (TPROXY: the client's address is not local) */
  transparent?: boolean
  /** SO_MARK, when not 0 */
  mark?: number
  /** make the upstream socket in this network namespace (an fd from openNetns in ./netns.ts); none or -1: ours */
  netns?: number
}

export type RelayEvent =
  | { type: 'connected'; id: number }
  /** before any byte was relayed; errno is positive (111 = ECONNREFUSED), ETIMEDOUT with timeout */
  | { type: 'failed'; id: number; errno: number; timeout: boolean }
  /** the idle timeout fired (a closed event follows) */
  | { type: 'idle'; id: number }
  /** a direction stopped reading at the buffer limit (paused) or started again (resumed), since the last one */
  | { type: 'flow'; id: number; paused: number; resumed: number }
  | RelayClosed

/**
 * The connection closed, with its byte counts and how: clean (both FINs passed on, or a plain close after a
 * failed connect), idle (timeout), loop and drain (relayAbort's 'looped' and 'reset'), or error: side's read
 * or write failed (errno positive, 104 = ECONNRESET) and the other side was reset. The node engine's names for
 * these are src/proxy/engines/ledger.ts's.
 */
export type RelayClosed = {
  type: 'closed'
  id: number
  downstreamRx: number
  downstreamTx: number
  upstreamRx: number
  upstreamTx: number
} & ({ close: 'clean' | 'idle' | 'loop' | 'drain' } | { close: 'error'; side: 'downstream' | 'upstream'; errno: number })

/**
 * The engine went down: its thread met what it cannot go on from (an event it could not allocate, a batch the
 * thread-safe function refused, epoll_wait failing), reset every connection it held and ended. relayAdd and
 * relayAbort throw ENOTCONN from then on; relayStop clears it. errno is positive, 0 where there is none.
 */
export interface RelayDown {
  reason: 'event_alloc' | 'tsfn_call' | 'epoll_wait'
  errno: number
}

export interface RelayStats {
  connections: number
  pipesInUse: number
  pipesPooled: number
  /** relayStart's maxPipes (Infinity without one) */
  pipesMax: number
}

interface RelayAddon {
  relayStart(onEvents: (events: RelayEvent[]) => void, opts: RelayOptions, onDown?: (down: RelayDown) => void): void
  relayAdd(id: number, downstreamFd: number, dst: { address: string; port: number }, bind: RelayBind, opts?: RelayAddOptions): SocketAddress
  relayAbort(id: number, how: 'reset' | 'looped'): void
  relayTcpInfo(id: number): TcpInfo | undefined
  relayStop(): void
  relayStats(): RelayStats
  relayFaultInjection?: boolean
}

function load(): RelayAddon {
  const addon = loadAddon<RelayAddon>()
  if (typeof addon.relayStart !== 'function') {
    throw new AddonLoadError(`the sockopt addon at ${addonPath()} has no relay engine: rebuild it (npm run build:addon)`)
  }
  return addon
}

/**
 * Starts the relay thread; events arrive in batches, one per epoll round, and onDown once, after the last of
 * them, should the engine go down. Throws EALREADY when running.
 */
export function relayStart(onEvents: (events: RelayEvent[]) => void, opts: RelayOptions, onDown?: (down: RelayDown) => void): void {
  load().relayStart(onEvents, opts, onDown)
}

export interface RelayAddOptions {
  /** the relay takes downstreamFd itself, no dup (the native acceptor's fd, which no node:net socket holds) */
  owned?: boolean
}

/**
 * Hands a connection to the relay thread: dup()s downstreamFd (the caller then destroys its node:net socket
 * with plain destroy()) or, with owned, takes it; connects a new upstream socket to dst and returns its local
 * address. A failed connect(2) comes later as a 'failed' event; socket/bind failures throw (EMFILE,
 * EADDRNOTAVAIL, EPERM), and then an owned fd is still the caller's to close.
 */
export function relayAdd(id: number, downstreamFd: number, dst: SocketAddress, bind: RelayBind, opts?: RelayAddOptions): SocketAddress {
  return load().relayAdd(id, downstreamFd, dst, bind, opts)
}

/** 'reset': reset both sides (drain end); 'looped': close the upstream, reset the client (loop guard). */
export function relayAbort(id: number, how: 'reset' | 'looped'): void {
  load().relayAbort(id, how)
}

/** The kernel's TCP_INFO of the upstream socket (the loop guard's probe), undefined when it is gone. */
export function relayTcpInfo(id: number): TcpInfo | undefined {
  return load().relayTcpInfo(id)
}

/** Stops the thread; connections still open are closed without events. */
export function relayStop(): void {
  load().relayStop()
}

export function relayStats(): RelayStats {
  return load().relayStats()
}

/** Whether the loaded addon is the sanitizer build with native/faults.h's switch (SIDECAR_LAB_FAULTS). */
export function relayFaultInjection(): boolean {
  return load().relayFaultInjection === true
}
