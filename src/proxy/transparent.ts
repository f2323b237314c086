// TPROXY interception (Istio's --interception-mode TPROXY): the mangle table diverts inbound packets to a
// transparent listener without NAT, so the accepted socket's local address IS the original destination;
// the connection to the app leaves from the client's own address (a transparent socket bound to it) with
// SO_MARK 1337, which the rules let through and which routes the app's replies back to this process.
//
// The sockets are made by the addon (IP_TRANSPARENT must be set before bind), then handed to node:net by
// fd: server.listen({ fd }) for the listener, and new Socket({ fd }).connect() for the upstream, so the
// connect is libuv's own non-blocking connect with node:net's 'connect'/'error' events, as in REDIRECT mode.
import { closeSync, readFileSync } from 'node:fs'
import { Socket, type Server } from 'node:net'
import { CapabilityError } from '../errors.js'
import { transparentSocket } from '../native/sockopt.js'
import type { Endpoint } from '../net/address.js'
import { netnsSocket } from '../native/netns.js'
import type { UpstreamSource } from './engines/ledger.js'

/** Istio's --tproxy-mark default: marks the sidecar's upstream packets and routes the app's replies back. */
export const TPROXY_MARK = 1337

const CAP_NET_ADMIN = 12
const CAP_NET_RAW = 13

/** The effective capability set, from /proc (undefined when it cannot be read). */
function effectiveCaps(): bigint | undefined {
  try {
    const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? BigInt(`0x${m[1]}`) : undefined
  } catch {
    return undefined
  }
}

function capabilityError(err: NodeJS.ErrnoException, what: string): CapabilityError {
  const caps = effectiveCaps()
  const has = (bit: number) => caps !== undefined && (caps & (1n << BigInt(bit))) !== 0n
  const missing =
    caps === undefined
      ? 'CAP_NET_ADMIN (or CAP_NET_RAW)'
      : [has(CAP_NET_ADMIN) ? '' : 'CAP_NET_ADMIN', has(CAP_NET_RAW) ? '' : 'CAP_NET_RAW'].filter(Boolean).join(' and ')
  return new CapabilityError(
    `--interception-mode TPROXY: ${what} was refused (${err.syscall ?? 'setsockopt'}: EPERM): this process ` +
      `(uid ${process.getuid?.()}, gid ${process.getgid?.()}) lacks ${missing}; the kernel accepts either for ` +
      `IP_TRANSPARENT and SO_MARK. Run it as root with --uid 0 --gid 1337 (as Istio's injector runs a TPROXY ` +
      'sidecar), or grant CAP_NET_ADMIN (docker --cap-add NET_ADMIN, setpriv --ambient-caps +net_admin).',
    err,
  )
}

function rethrow(err: unknown, what: string): never {
  if ((err as NodeJS.ErrnoException).code === 'EPERM') throw capabilityError(err as NodeJS.ErrnoException, what)
  throw err
}

/**
 * Fails now, with the missing capability named, rather than on the first connection: makes and closes a
 * transparent, marked socket, which needs exactly what each upstream connection will need.
 */
export function checkTransparentCapability(): void {
  let fd: number
  try {
    fd = transparentSocket('::', 0, TPROXY_MARK)
  } catch (err) {
    rethrow(err, 'a transparent, marked socket')
  }
  closeSync(fd)
}

/** Listens on a transparent socket, so TPROXY can hand this server connections to any address. */
export function listenTransparent(server: Server, host: string, port: number, backlog: number, ready: () => void): void {
  let fd: number
  try {
    fd = transparentSocket(host, port, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') rethrow(err, 'the transparent listener')
    // bind's EADDRINUSE/EACCES go to the caller's 'error' handler like those of a plain listen().
    process.nextTick(() => server.emit('error', err))
    return
  }
  server.once('error', () => {
    if (!server.listening) closeFdQuietly(fd)
  })
  server.listen({ fd, backlog }, ready)
}

function closeFdQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed with the server's handle
  }
}

export interface TransparentConnectOptions {
  allowHalfOpen: boolean
  noDelay: boolean
  highWaterMark: number
}

/**
 * Connects to dst from a socket made beforehand: TPROXY's (the client's own address, IP_TRANSPARENT and SO_MARK
 * 1337; the kernel picks the port) or a ztunnel's (made inside the pod's network namespace, marked, and inbound
 * bound to the client's address the same way). The socket is bound, not yet connected, when node:net takes it;
 * Socket.connect() then runs on that handle. A socket that cannot be made (EADDRNOTAVAIL, EMFILE, ...) is
 * returned destroyed with the error, so the caller sees it as a failed connect.
 */
export function connectPrepared(source: UpstreamSource, dst: Endpoint, options: TransparentConnectOptions): Socket {
  let fd: number
  try {
    fd =
      source.netns !== undefined
        ? netnsSocket({
            netns: source.netns,
            family: dst.family,
            type: 'tcp',
            ...(source.address ? { address: source.address } : {}),
            transparent: source.transparent === true,
            mark: source.mark ?? 0,
          })
        : transparentSocket(source.address ?? '::', 0, source.mark ?? TPROXY_MARK)
  } catch (err) {
    const failed = new Socket()
    const inTproxy = source.netns === undefined && (err as NodeJS.ErrnoException).code === 'EPERM'
    const error = inTproxy ? capabilityError(err as NodeJS.ErrnoException, 'the upstream socket') : err
    process.nextTick(() => failed.destroy(error as Error))
    return failed
  }
  // highWaterMark reaches the Socket's Duplex options though @types/node does not list it for Socket.
  const socket = new Socket({
    fd,
    readable: true,
    writable: true,
    allowHalfOpen: options.allowHalfOpen,
    highWaterMark: options.highWaterMark,
  } as ConstructorParameters<typeof Socket>[0])
  socket.connect({ host: dst.address, port: dst.port, family: dst.family, noDelay: options.noDelay })
  return socket
}
