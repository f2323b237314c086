// The native engine's accept (native/acceptor.c; loaded by addon.ts): connections accepted in C on this thread's
// loop and handed over in batches as fds with their addresses, without a node:net Socket for each (issue 18).
import { loadAddon } from './addon.js'
import type { SocketAddress, TcpInfo } from './sockopt.js'

/** One accepted connection: its fd (the caller's: relayAdd with owned, or closeFd) and addresses. */
export interface AcceptedFd {
  fd: number
  remote: SocketAddress
  /** SO_ORIGINAL_DST: absent when the connection was not redirected (no conntrack entry) */
  dst?: SocketAddress
  /** SO_ORIGINAL_DST failed otherwise (what originalDst() would have thrown) */
  dstError?: NodeJS.ErrnoException
}

/**
 * accept4 ran out of descriptors (EMFILE, ENFILE): the acceptor gave up its reserved fd to accept and close
 * what was pending (libuv's trick), `dropped` connections.
 */
export interface AcceptFailed {
  error: NodeJS.ErrnoException
  dropped: number
}

export type AcceptEntry = AcceptedFd | AcceptFailed

declare const acceptorBrand: unique symbol
export type AcceptorHandle = { readonly [acceptorBrand]: true }

interface Addon {
  acceptorStart(listenFd: number, onBatch: (entries: AcceptEntry[]) => void, budget?: Int32Array): AcceptorHandle
  acceptorStop(handle: AcceptorHandle): void
  dupFd(fd: number): number
  closeFd(fd: number, reset: boolean): void
  localAddress(fd: number): SocketAddress
  tcpInfo(fd: number): TcpInfo
}

const load = (): Addon => loadAddon<Addon>()

/**
 * Polls a listening, non-blocking fd and calls onBatch once per round with up to 128 connections, each with
 * TCP_NODELAY set; with budget (FdBudget.available), at most budget[0] / 2 of them and at least one. The fd is
 * the acceptor's from here (acceptorStop closes it); on a throw it is still the caller's. An exception onBatch
 * throws is an uncaught one, as from any callback.
 */
export function acceptorStart(listenFd: number, onBatch: (entries: AcceptEntry[]) => void, budget?: Int32Array): AcceptorHandle {
  return load().acceptorStart(listenFd, onBatch, budget)
}

/** No more batches; closes the listening fd. A second call does nothing. */
export function acceptorStop(handle: AcceptorHandle): void {
  load().acceptorStop(handle)
}

/** A close-on-exec duplicate of fd. */
export function dupFd(fd: number): number {
  return load().dupFd(fd)
}

/** Closes an accepted socket: with a FIN, or with an RST (reset: SO_LINGER 0, as resetAndDestroy). */
export function closeFd(fd: number, reset = false): void {
  load().closeFd(fd, reset)
}

/** getsockname of an fd; undefined when the kernel refuses (a socket already reset). */
export function fdLocalAddress(fd: number): SocketAddress | undefined {
  try {
    return load().localAddress(fd)
  } catch {
    return undefined
  }
}

/** TCP_INFO of an fd (the loop guard's probe), undefined when the kernel refuses. */
export function fdTcpInfo(fd: number): TcpInfo | undefined {
  try {
    return load().tcpInfo(fd)
  } catch {
    return undefined
  }
}
