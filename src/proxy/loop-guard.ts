// Notices the proxy's own upstream connections coming back to it. That happens when the capture rules do
// not exempt the proxy's uid/gid: its connect() to the original destination is redirected to 15001 again,
// and without this guard every hop would open another one.
import type { Socket } from 'node:net'
import { endpointKey } from './endpoint.js'

export interface LoopOwner {
  /** called when this owner's upstream socket turned out to be connected to the proxy itself */
  onUpstreamLooped(): void
}

export class LoopGuard {
  readonly #upstreams = new Map<string, LoopOwner>()

  /**
   * Remember the local address of an upstream socket that is connecting. net.connect() issues the
   * connect(2) in a nextTick for IP literals, so one more nextTick sees the bound local port, and that
   * runs before the event loop can deliver the looped accept to the listener.
   */
  track(upstream: Socket, owner: LoopOwner): void {
    process.nextTick(() => {
      const port = upstream.localPort
      if (port === undefined || upstream.destroyed) return
      const key = endpointKey(upstream.localAddress, port)
      this.#upstreams.set(key, owner)
      upstream.once('close', () => this.#upstreams.delete(key))
    })
  }

  /** The owner whose upstream socket is this accepted connection's peer, if any. */
  ownerOf(remoteAddress: string | undefined, remotePort: number | undefined): LoopOwner | undefined {
    if (this.#upstreams.size === 0) return undefined
    return this.#upstreams.get(endpointKey(remoteAddress, remotePort))
  }
}
