// Sockets made inside another network namespace (native/netns.c; loaded by addon.ts), for ambient mode: the
// node-level proxy serves every pod from the node's namespace, so the sockets it listens and connects with are
// made in the pod's. The fd goes to node:net: server.listen({ fd }) for a listener, dgram's bind({ fd }) for
// UDP, new Socket({ fd, readable: true, writable: true }).connect() for an outbound TCP socket.
import { closeSync, constants, openSync } from 'node:fs'
import { loadAddon } from './addon.js'

export interface NetnsSocketOptions {
  /** an fd of /proc/PID/ns/net or /run/netns/NAME (openNetns), or -1: this process's namespace */
  netns: number
  family: 4 | 6
  type: 'tcp' | 'udp'
  /** bind to this address (the family's wildcard when only port is given); must be of `family` */
  address?: string
  /** bind to this port (0: the kernel picks one) */
  port?: number
  /** IP_TRANSPARENT / IPV6_TRANSPARENT before bind (a non-local address; a TPROXY listener) */
  transparent?: boolean
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address that is not (yet) on any interface */
  freebind?: boolean
  /** SO_MARK, when not 0 (needs CAP_NET_ADMIN) */
  mark?: number
  /** SO_REUSEADDR */
  reuseAddr?: boolean
  /** listen with this backlog after bind (tcp only) */
  listen?: number
}

interface Addon {
  netnsSocket(opts: NetnsSocketOptions): number
  faultsReset(): boolean
}

const load = (): Addon => loadAddon<Addon>()

/**
 * A non-blocking, close-on-exec socket made in the namespace opts.netns refers to (the calling thread never
 * changes namespace), then, in this order: IP(V6)_TRANSPARENT and SO_MARK, IP(V6)_FREEBIND, SO_REUSEADDR,
 * TCP_NODELAY (tcp), bind (when address or port is given), listen (when listen is given). Returns its fd, which
 * the caller owns. Throws a node-style errno error whose syscall names the failed step: pthread_create,
 * setns (EINVAL: not a network namespace; EBADF: not an open fd; EPERM: no CAP_SYS_ADMIN), socket,
 * setsockopt(...), bind, listen; the socket is closed then. A bad option is a TypeError or RangeError naming it.
 */
export function netnsSocket(opts: NetnsSocketOptions): number {
  return load().netnsSocket(opts)
}

/** An fd for a namespace (/run/netns/NAME, /proc/PID/ns/net), read-only; closeNetns closes it. */
export function openNetns(path: string): number {
  return openSync(path, constants.O_RDONLY) // libuv opens every file close-on-exec
}

export function closeNetns(fd: number): void {
  closeSync(fd)
}

/**
 * Tests only: native/faults.h's counters start over with SIDECAR_LAB_FAULTS as it is now. True in the
 * fault-injection build (npm run test:asan), false (nothing done) in the normal one.
 */
export function faultsReset(): boolean {
  return load().faultsReset()
}
