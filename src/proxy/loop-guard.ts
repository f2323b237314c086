// Notices the proxy's own upstream connections coming back to it. That happens when the capture rules do
// not exempt the proxy's uid/gid: its connect() to the original destination is redirected to 15001 again,
// and without this guard every hop would open another one.
//
// A looped hop is the proxy talking to itself: the upstream socket's SYN was captured and redirected to our
// own listener, so the accepted socket IS the other end of that upstream socket. Three things must hold:
//  1. the accepted socket's peer is the upstream socket's local address and port;
//  2. its original destination is the upstream socket's destination (Linux gives one local port to several
//     connect()ed sockets when their destinations differ, so the port alone says nothing);
//  3. it arrives while that upstream socket is still connecting, or in the same event-loop turn in which
//     its connect completed. The upstream's connect() never reaches the real destination: the kernel
//     completes the handshake with our listener during or right after the connect(2) call, so the looped
//     connection is already in the accept queue when the event loop next polls, and node reports it in that
//     poll, before the upstream's 'connect' (the listener fd was woken first) or, when the kernel finished
//     the handshake later, right after it, in the same poll.
// Rule 3 is what tells a loop from a NAT coincidence: when an app's redirected tuple clashes with a
// conntrack entry (an earlier connection from the same source port, still in TIME_WAIT), NAT gives the app a
// random new source port, and that port can be the local port of one of our upstream sockets to the same
// destination. Such an upstream was connected before, to the real destination, in an earlier turn; its
// accepted namesake is an unrelated application connection and must be proxied like any other.
import type { Socket } from 'node:net'
import { endpointKey, type Endpoint } from './endpoint.js'

export interface LoopOwner {
  /** called when this owner's upstream socket turned out to be connected to the proxy itself */
  onUpstreamLooped(): void
}

interface Tracked {
  owner: LoopOwner
  upstream: Socket
  /** its connect completed in the current event-loop turn (cleared in the turn's check phase) */
  justConnected: boolean
}

function connectionKey(localAddress: string | undefined, localPort: number | undefined, dst: Endpoint): string {
  return `${endpointKey(localAddress, localPort)}>${endpointKey(dst.address, dst.port)}`
}

export class LoopGuard {
  readonly #upstreams = new Map<string, Tracked>()
  #justConnected: Tracked[] = []

  /**
   * Remember an upstream socket that is connecting to dst. net.connect() issues the connect(2) in a nextTick
   * for IP literals, so one more nextTick sees the bound local port, and that runs before the event loop can
   * deliver the looped accept to the listener.
   */
  track(upstream: Socket, dst: Endpoint, owner: LoopOwner): void {
    process.nextTick(() => {
      const port = upstream.localPort
      if (port === undefined || upstream.destroyed) return
      const key = connectionKey(upstream.localAddress, port, dst)
      const entry: Tracked = { owner, upstream, justConnected: false }
      this.#upstreams.set(key, entry)
      upstream.once('connect', () => this.#connected(entry))
      upstream.once('close', () => {
        if (this.#upstreams.get(key) === entry) this.#upstreams.delete(key)
      })
    })
  }

  #connected(entry: Tracked): void {
    entry.justConnected = true
    // setImmediate runs in the check phase, after every I/O callback of this poll: one immediate per turn
    // clears the marks of all upstream sockets that connected in it.
    if (this.#justConnected.push(entry) === 1) {
      setImmediate(() => {
        for (const e of this.#justConnected) e.justConnected = false
        this.#justConnected = []
      })
    }
  }

  /** The owner whose upstream socket is this accepted connection's other end, if any (rules 1-3 above). */
  ownerOf(remoteAddress: string | undefined, remotePort: number | undefined, dst: Endpoint | undefined): LoopOwner | undefined {
    if (this.#upstreams.size === 0 || !dst) return undefined
    const entry = this.#upstreams.get(connectionKey(remoteAddress, remotePort, dst))
    if (!entry || !(entry.upstream.connecting || entry.justConnected)) return undefined
    return entry.owner
  }

  get tracked(): number {
    return this.#upstreams.size
  }
}
