// Notices the proxy's own upstream connections coming back to it. That happens when the capture rules do
// not exempt the proxy's uid/gid: its connect() to the original destination is redirected to 15001 again,
// and without this guard every hop would open another one.
//
// A looped hop is the proxy talking to itself: the upstream socket's SYN was captured and redirected to our
// own listener, so the accepted socket IS the other end of that upstream socket. All of this must hold:
//  1. the accepted socket's peer is the upstream socket's local address and port;
//  2. its original destination is the upstream socket's destination (Linux gives one local port to several
//     connect()ed sockets when their destinations differ, so the port alone says nothing);
//  3. it arrives while that upstream socket is still connecting as node sees it, or in the same event-loop
//     turn in which its connect completed. The upstream's connect() never reaches the real destination: the
//     kernel completes the handshake with our listener during or right after the connect(2) call, so the
//     looped connection is in the accept queue when the event loop next polls;
//  4. the kernel has finished the upstream's handshake (TCP_INFO: not SYN_SENT). accept() only returns a
//     connection whose handshake is complete, and in a loop the upstream socket is its other end, so it took
//     the SYN-ACK before our listener took the final ACK. An upstream still in SYN_SENT is waiting for its
//     real destination, however long node has called it connecting (seconds, when a loaded server drops SYNs);
//  5. the two ends took their handshake ACKs in the same moment (TCP_INFO's time since the last ACK, in
//     milliseconds, within SAME_MOMENT_MS of each other). On loopback one end takes what the other sends at
//     once, so any later ACK moves both times together.
// Rules 3-5 tell a loop from a NAT coincidence: when an app's redirected tuple clashes with a conntrack entry
// (an earlier connection from the same source port, still in TIME_WAIT), NAT gives the app a random new
// source port, and that port can be the local port of one of our upstream sockets to the same destination.
// Such an upstream connected to the real destination at its own time; its accepted namesake is an unrelated
// application connection and must be proxied like any other. A true loop missed by rule 5 (a softirq delayed
// past SAME_MOMENT_MS) costs one hop: the next hop loops the same way and is caught.
//  6. a first match is a suspect, not yet a loop: it is proxied like any other connection and remembered.
//     In a burst, rules 3-5 cannot tell a NAT coincidence from a loop (hundreds of handshakes complete in the
//     same turn and the same millisecond: seen, 2 app connections of 1,500 refused in the NAT-clash test on a
//     loaded machine). A true loop repeats: the suspect's own upstream comes back too, and that second match
//     is the loop, refused along with the whole chain. A coincidence would have to happen twice in a row.
import type { Socket } from 'node:net'
import { TCP_SYN_SENT, tcpInfoOf, type TcpInfo } from '../native/sockopt.js'
import type { ListenerKind } from './clusters.js'
import { endpointKey, type Endpoint } from '../net/address.js'

/** Rule 5's tolerance: a few scheduler ticks (a jiffy is 1-10 ms), far below the seconds a NAT coincidence spans. */
export const SAME_MOMENT_MS = 20

export interface LoopOwner {
  /** the listener whose connection opened the upstream socket (what a loop's advice depends on) */
  readonly listenerKind: ListenerKind
  /** called when this owner's upstream socket turned out to be connected to the proxy itself */
  onUpstreamLooped(): void
}

/** The guard's view of an upstream socket, whichever engine holds it. */
export interface UpstreamProbe {
  /** node's view: connect(2) issued, completion not yet delivered */
  readonly connecting: boolean
  /** the kernel's TCP_INFO for it, undefined once it is gone */
  tcpInfo(): TcpInfo | undefined
}

/** What the owner of a tracked upstream tells the guard. */
export interface TrackedUpstream {
  connected(): void
  closed(): void
}

/** One tracked upstream, its own TrackedUpstream: one object per connection, no closures (memory per idle connection). */
class Tracked implements TrackedUpstream {
  /** its connect completed in the current event-loop turn (cleared in the turn's check phase) */
  justConnected = false

  constructor(
    readonly guard: LoopGuard,
    readonly key: string,
    readonly owner: LoopOwner,
    readonly probe: UpstreamProbe,
  ) {}

  connected(): void {
    this.guard.connected(this)
  }

  closed(): void {
    this.guard.untrack(this)
  }
}

// join() makes one flat string: a template's cons-string tree would be held per tracked upstream (~200 bytes).
function connectionKey(localAddress: string | undefined, localPort: number | undefined, dst: Endpoint): string {
  return [endpointKey(localAddress, localPort), endpointKey(dst.address, dst.port)].join('>')
}

/** What the guard says of an accepted connection (rule 6). */
export type LoopVerdict =
  | { kind: 'none' }
  /** matched owner's upstream once: proxy it, and call admitted() with the connection made for it */
  | { kind: 'suspect'; of: LoopOwner }
  /**
   * matched the upstream of a suspect: refuse it; every owner in chain looped. The origin comes first: told
   * first, the native engine ends it before the suspect's reset (closing the origin's upstream) reaches it.
   */
  | { kind: 'loop'; chain: readonly LoopOwner[] }

export class LoopGuard {
  readonly #upstreams = new Map<string, Tracked>()
  /** suspect connection -> the owner whose upstream it matched */
  readonly #suspects = new WeakMap<LoopOwner, LoopOwner>()
  #justConnected: Tracked[] = []

  /**
   * Remember a node:net upstream socket that is connecting to dst. net.connect() issues the connect(2) in a
   * nextTick for IP literals, so one more nextTick sees the bound local port, and that runs before the event
   * loop can deliver the looped accept to the listener.
   */
  track(upstream: Socket, dst: Endpoint, owner: LoopOwner): void {
    process.nextTick(() => {
      const port = upstream.localPort
      if (port === undefined || upstream.destroyed) return
      const probe: UpstreamProbe = {
        get connecting() {
          return upstream.connecting
        },
        tcpInfo: () => tcpInfoOf(upstream),
      }
      const tracked = this.trackUpstream({ address: upstream.localAddress ?? '', port, family: dst.family }, dst, probe, owner)
      upstream.once('connect', () => tracked.connected())
      upstream.once('close', () => tracked.closed())
    })
  }

  /** Remember an upstream connection from local to dst, held by any engine; its owner reports connect and close. */
  trackUpstream(local: Endpoint, dst: Endpoint, probe: UpstreamProbe, owner: LoopOwner): TrackedUpstream {
    const entry = new Tracked(this, connectionKey(local.address, local.port, dst), owner, probe)
    this.#upstreams.set(entry.key, entry)
    return entry
  }

  /** entry's owner reported its close (Tracked.closed) */
  untrack(entry: Tracked): void {
    if (this.#upstreams.get(entry.key) === entry) this.#upstreams.delete(entry.key)
  }

  /** entry's owner reported its connect (Tracked.connected) */
  connected(entry: Tracked): void {
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

  /**
   * The owner whose upstream socket is this accepted connection's other end, if any (rules 1-5 above).
   * accepted reads the accepted socket's TCP_INFO, only for a suspect (undefined skips rule 5).
   */
  ownerOf(
    remoteAddress: string | undefined,
    remotePort: number | undefined,
    dst: Endpoint | undefined,
    accepted?: () => TcpInfo | undefined,
  ): LoopOwner | undefined {
    if (this.#upstreams.size === 0 || !dst) return undefined
    const entry = this.#upstreams.get(connectionKey(remoteAddress, remotePort, dst))
    if (!entry || !(entry.probe.connecting || entry.justConnected)) return undefined
    const upstream = entry.probe.tcpInfo()
    if (!upstream || upstream.state === TCP_SYN_SENT) return undefined
    const ours = accepted?.()
    if (ours && Math.abs(upstream.lastAckRecvMs - ours.lastAckRecvMs) > SAME_MOMENT_MS) return undefined
    return entry.owner
  }

  /** Rules 1-6 for an accepted connection; for a suspect, call suspected() with the connection made for it. */
  verdict(
    remoteAddress: string | undefined,
    remotePort: number | undefined,
    dst: Endpoint | undefined,
    accepted?: () => TcpInfo | undefined,
  ): LoopVerdict {
    const owner = this.ownerOf(remoteAddress, remotePort, dst, accepted)
    if (!owner) return { kind: 'none' }
    const origin = this.#suspects.get(owner)
    return origin ? { kind: 'loop', chain: [origin, owner] } : { kind: 'suspect', of: owner }
  }

  /** conn was accepted as a suspect of owner's upstream (a 'suspect' verdict). */
  suspected(conn: LoopOwner, owner: LoopOwner): void {
    this.#suspects.set(conn, owner)
  }

  get tracked(): number {
    return this.#upstreams.size
  }
}
