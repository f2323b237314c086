// The addon's socket options (native/sockopt.c; loaded by addon.ts): its integer/fd interface as typed calls on sockets.
import type { Socket } from 'node:net'
import { getSystemErrorName } from 'node:util'
import { loadAddon } from './addon.js'
import { addressFamily } from '../net/address.js'

export interface SocketAddress {
  address: string
  port: number
  family: 4 | 6
}

/** What the kernel's TCP_INFO says of a socket (the part the loop guard reads). */
export interface TcpInfo {
  /** the kernel's TCP state: 1 ESTABLISHED, 2 SYN_SENT, 3 SYN_RECV, ... (include/net/tcp_states.h) */
  state: number
  /** milliseconds since the socket last received an ACK (for a fresh connection: its handshake's) */
  lastAckRecvMs: number
}

export const TCP_ESTABLISHED = 1
export const TCP_SYN_SENT = 2
export const TCP_CLOSE = 7

interface Addon {
  originalDst(fd: number, family: number): SocketAddress | undefined
  setMark(fd: number, mark: number): void
  getMark(fd: number): number
  pendingError(fd: number): number
  localAddress(fd: number): SocketAddress
  tcpInfo(fd: number): TcpInfo
  transparentSocket(address: string, port: number, mark: number): number
}

const load = (): Addon => loadAddon<Addon>()

/** Throws AddonLoadError now rather than on the first connection. */
export function ensureAddon(): void {
  load()
}

/** The file descriptor behind a connected node:net socket. */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle
  const fd = handle?.fd
  if (typeof fd !== 'number' || fd < 0) {
    throw Object.assign(new Error('socket has no file descriptor (closed, or not a TCP socket)'), {
      code: 'EBADF',
    })
  }
  return fd
}

/**
 * The destination the client dialled before NAT rewrote it, or undefined when the connection was not
 * redirected (the kernel's ENOENT: no conntrack entry). With conntrack on but no NAT, it is the socket's own
 * local address. Throws (code from the errno, EBADF for a closed socket) on any other failure. An IPv4-mapped
 * IPv6 socket asks the IPv4 table.
 */
export function originalDst(socket: Socket): SocketAddress | undefined {
  return load().originalDst(socketFd(socket), addressFamily(socket.localAddress))
}

/** SO_MARK (needs CAP_NET_ADMIN); mark must be an int32 (a TypeError names it otherwise). */
export function setMark(socket: Socket, mark: number): void {
  load().setMark(socketFd(socket), mark)
}

export function getMark(socket: Socket): number {
  return load().getMark(socketFd(socket))
}

/**
 * The socket's pending error as an errno exception (ECONNRESET for a reset that arrived behind the last bytes),
 * or undefined when there is none or the socket has no descriptor left. Reading it clears it.
 */
export function takePendingError(socket: Socket): NodeJS.ErrnoException | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle
  if (typeof handle?.fd !== 'number' || handle.fd < 0) return undefined
  const errno = load().pendingError(handle.fd)
  if (!errno) return undefined
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`read ${code}`), { code, errno: -errno, syscall: 'read' })
}

export function localAddressOf(socket: Socket): SocketAddress {
  return load().localAddress(socketFd(socket))
}

/**
 * A bound, non-blocking TCP socket with IP_TRANSPARENT / IPV6_TRANSPARENT (and SO_MARK when mark is not 0):
 * its fd, for server.listen({ fd }) (port given) or new Socket({ fd }).connect() (port 0). Throws with the
 * errno's code (EPERM without CAP_NET_ADMIN/CAP_NET_RAW) and the refused option in `syscall`.
 */
export function transparentSocket(address: string, port: number, mark: number): number {
  return load().transparentSocket(address, port, mark)
}

/** TCP_INFO of a socket, or undefined when it has no descriptor left or the kernel refuses (not TCP). */
export function tcpInfoOf(socket: Socket): TcpInfo | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle
  if (typeof handle?.fd !== 'number' || handle.fd < 0) return undefined
  try {
    return load().tcpInfo(handle.fd)
  } catch {
    return undefined
  }
}
