// An accepted connection as the listener's accept path sees it, whichever way it was accepted: a node:net Socket
// (the node engine; the native engine under ambient's divert), or an fd the native acceptor took in C
// (native/acceptor.c: no Socket built and destroyed per connection, issue 18). And the switch from node:net's
// server to that acceptor once the server listens.
import type { Server, Socket } from 'node:net'
import {
  acceptorStart,
  acceptorStop,
  closeFd,
  dupFd,
  fdLocalAddress,
  fdTcpInfo,
  type AcceptEntry,
  type AcceptedFd,
  type AcceptorHandle,
} from '../native/acceptor.js'
import { originalDst, tcpInfoOf, type SocketAddress, type TcpInfo } from '../native/sockopt.js'
import { endpoint, type Endpoint } from '../net/address.js'

const ignore = () => {}

export interface Downstream {
  readonly remoteAddress: string | undefined
  readonly remotePort: number | undefined
  /** SO_ORIGINAL_DST; undefined when not redirected; throws on any other failure */
  originalDst(): SocketAddress | undefined
  /** the accepted socket's own address (TPROXY's destination, a blackhole record's downstreamLocal) */
  local(): Endpoint | undefined
  tcpInfo(): TcpInfo | undefined
  /** closes it, with a FIN or an RST (reset); closed runs once it is closed */
  close(reset: boolean, closed?: () => void): void
  /** closes one whose close is under way (the drain's end) */
  abort(): void
}

export class SocketDownstream implements Downstream {
  constructor(readonly socket: Socket) {}

  get remoteAddress() {
    return this.socket.remoteAddress
  }

  get remotePort() {
    return this.socket.remotePort
  }

  originalDst(): SocketAddress | undefined {
    return originalDst(this.socket)
  }

  local(): Endpoint | undefined {
    return endpoint(this.socket.localAddress, this.socket.localPort)
  }

  tcpInfo(): TcpInfo | undefined {
    return tcpInfoOf(this.socket)
  }

  close(reset: boolean, closed?: () => void): void {
    this.socket.on('error', ignore)
    if (closed) this.socket.once('close', closed)
    if (reset) this.socket.resetAndDestroy()
    else this.socket.destroy()
  }

  abort(): void {
    this.socket.destroy()
  }
}

/** An fd from the native acceptor; closed synchronously (no Socket, no close event to wait for). */
export class FdDownstream implements Downstream {
  constructor(readonly accepted: AcceptedFd) {}

  get fd(): number {
    return this.accepted.fd
  }

  get remoteAddress() {
    return this.accepted.remote.address
  }

  get remotePort() {
    return this.accepted.remote.port
  }

  originalDst(): SocketAddress | undefined {
    if (this.accepted.dstError) throw this.accepted.dstError
    return this.accepted.dst
  }

  local(): Endpoint | undefined {
    const a = fdLocalAddress(this.accepted.fd)
    return a && endpoint(a.address, a.port)
  }

  tcpInfo(): TcpInfo | undefined {
    return fdTcpInfo(this.accepted.fd)
  }

  close(reset: boolean, closed?: () => void): void {
    closeFd(this.accepted.fd, reset)
    closed?.()
  }

  abort(): void {}
}

/**
 * Takes a listening node:net server's socket for the native acceptor: a duplicate of its fd, then the server
 * closed (libuv stops watching its own fd; the socket listens on through the duplicate, its backlog intact, as
 * all of this runs in one turn). Returns the acceptor's handle (acceptorStop closes the listening socket).
 */
export function takeOverListener(server: Server, onBatch: (entries: AcceptEntry[]) => void, budget?: Int32Array): AcceptorHandle {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) {
    throw Object.assign(new Error('the listening server has no file descriptor'), { code: 'EBADF' })
  }
  const listenFd = dupFd(fd)
  server.close()
  try {
    return acceptorStart(listenFd, onBatch, budget)
  } catch (err) {
    closeFd(listenFd)
    throw err
  }
}

export { acceptorStop, type AcceptEntry, type AcceptorHandle }
