// Notices the proxy's own upstream connections coming back to it. That happens when the capture rules do
// not exempt the proxy's uid/gid: its connect() to the original destination is redirected to 15001 again,
// and without this guard every hop would open another one.
//
// A looped hop is recognised by the whole connection, not by its source port alone: the accepted socket's
// peer is one of our upstream sockets' local address and port, AND its original destination is that upstream
// socket's destination. Linux gives one local port to several connect()ed sockets when their destinations
// differ, so an application's new connection can share a source port with one of our open upstream sockets
// to another destination; matching on the port alone would refuse it as a loop.
import type { Socket } from 'node:net'
import { endpointKey, type Endpoint } from './endpoint.js'

export interface LoopOwner {
  /** called when this owner's upstream socket turned out to be connected to the proxy itself */
  onUpstreamLooped(): void
}

function connectionKey(localAddress: string | undefined, localPort: number | undefined, dst: Endpoint): string {
  return `${endpointKey(localAddress, localPort)}>${endpointKey(dst.address, dst.port)}`
}

export class LoopGuard {
  readonly #upstreams = new Map<string, LoopOwner>()

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
      this.#upstreams.set(key, owner)
      upstream.once('close', () => this.#upstreams.delete(key))
    })
  }

  /** The owner whose upstream socket is this accepted connection's other end, if any. */
  ownerOf(remoteAddress: string | undefined, remotePort: number | undefined, dst: Endpoint | undefined): LoopOwner | undefined {
    if (this.#upstreams.size === 0 || !dst) return undefined
    return this.#upstreams.get(connectionKey(remoteAddress, remotePort, dst))
  }

  get tracked(): number {
    return this.#upstreams.size
  }
}
