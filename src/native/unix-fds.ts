// The addon's Unix-socket plumbing (native/unix-fds.c, unix-wait.c; loaded by addon.ts): SOCK_SEQPACKET sockets and messages
// that carry fds (SCM_RIGHTS), which node:net has not, for ambient mode's ZDS (src/ambient/zds.ts). Errors are
// node-style errno exceptions (code, errno, syscall) as in sockopt.ts. Every fd these return is the caller's to
// close (fs.closeSync); SeqpacketSocket does it for a socket, after its pending wait has settled.
import { closeSync } from 'node:fs'
import { loadAddon } from './addon.js'

/** One received message and the fds that came with it (close-on-exec; the receiver's to close). */
export interface FdMessage {
  data: Buffer
  fds: number[]
}

/** One message's limits, both ways (native/unix-fds.c): larger ones are refused (ERR_OUT_OF_RANGE, EMSGSIZE). */
export const MESSAGE_MAX_BYTES = 65536
export const MESSAGE_MAX_FDS = 16

interface Addon {
  seqpacketConnect(path: string): number
  seqpacketListen(path: string, backlog: number): number
  sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number
  recvWithFds(fd: number): Promise<FdMessage | null>
  acceptAsync(fd: number): Promise<number>
  recvCancel(fd: number): boolean
  unixFdsFaults(): boolean
}

const load = (): Addon => loadAddon<Addon>()

/** A connected non-blocking SOCK_SEQPACKET socket's fd; throws ENOENT/ECONNREFUSED/EAGAIN (backlog full) at once. */
export function seqpacketConnect(path: string): number {
  return load().seqpacketConnect(path)
}

/** A listening SOCK_SEQPACKET socket's fd, bound to path (EADDRINUSE when the path exists). */
export function seqpacketListen(path: string, backlog: number): number {
  return load().seqpacketListen(path, backlog)
}

/** Sends one message (1 to 64 KiB) with up to 16 fds; never waits: EAGAIN when the peer's queue is full. */
export function sendWithFds(fd: number, data: Buffer, fds: readonly number[] = []): number {
  return load().sendWithFds(fd, data, fds)
}

/**
 * The next message and its fds, or null when the peer closed. Rejects EMSGSIZE for a message over the limits
 * (its fds closed), ECANCELED after recvCancel, EBUSY when a wait on fd is already pending.
 */
export function recvWithFds(fd: number): Promise<FdMessage | null> {
  return load().recvWithFds(fd)
}

/** The next connection on a listener (non-blocking, close-on-exec). */
export function acceptAsync(fd: number): Promise<number> {
  return load().acceptAsync(fd)
}

/** Rejects fd's pending recvWithFds/acceptAsync with ECANCELED; false when none was pending. */
export function recvCancel(fd: number): boolean {
  return load().recvCancel(fd)
}

/** Rereads SIDECAR_LAB_FAULTS (the fault-injection build only); whether this addon is that build. */
export function unixFdsFaults(): boolean {
  return load().unixFdsFaults()
}

/**
 * A SOCK_SEQPACKET socket that owns its fd: one wait at a time, and close() cancels that wait and lets it
 * settle before closing, so libuv never polls a closed fd and no late recvmsg reads a reused fd number.
 */
export class SeqpacketSocket {
  private pending: Promise<unknown> | undefined
  private open = true

  constructor(readonly fd: number) {}

  get closed(): boolean {
    return !this.open
  }

  /** Sends one message; EBADF once closed (never to whatever took the fd's number since). */
  send(data: Buffer, fds: readonly number[] = []): void {
    this.assertOpen('sendmsg')
    sendWithFds(this.fd, data, fds)
  }

  recv(): Promise<FdMessage | null> {
    try {
      this.assertOpen('recvmsg')
      return this.track(recvWithFds(this.fd))
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  accept(): Promise<number> {
    try {
      this.assertOpen('accept4')
      return this.track(acceptAsync(this.fd))
    } catch (err) {
      return Promise.reject(err as Error)
    }
  }

  async close(): Promise<void> {
    if (!this.open) return
    this.open = false
    recvCancel(this.fd)
    await this.pending?.catch(() => {})
    closeSync(this.fd)
  }

  private assertOpen(syscall: string): void {
    if (this.open) return
    throw Object.assign(new Error(`${syscall} EBADF: the socket is closed`), { code: 'EBADF', errno: -9, syscall })
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    const settled = promise.finally(() => {
      if (this.pending === settled) this.pending = undefined
    })
    this.pending = settled
    return settled
  }
}
