// Moves bytes one way between two sockets with Envoy's TCP proxy semantics: a FIN is passed on as a FIN
// (half-close), reading pauses while the other side holds more than the buffer limit (its writable high
// water mark), and bytes that can no longer be delivered reset the sender instead of vanishing.
import type { Socket } from 'node:net'
import { TCP_CLOSE, takePendingError, tcpInfoOf } from '../../native/sockopt.js'
import type { Counter } from '../../stats/stats.js'

/**
 * How often a paused socket's TCP state is read. Paused, it is not read, and libuv learns of a reset only
 * from a read: without this, a peer's RST would wait unseen for the idle timeout, the other side held open.
 */
export const pausedPollMs = 1000

export interface FlowCounters {
  paused: Counter
  resumed: Counter
}

export function relay(from: Socket, to: Socket, flow: FlowCounters): void {
  let poll: NodeJS.Timeout | undefined
  const stopPolling = () => {
    clearInterval(poll)
    poll = undefined
  }
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed || to.writableEnded) {
      // The receiver is gone: these bytes cannot arrive, so make the loss visible to the sender.
      from.resetAndDestroy()
      return
    }
    if (!to.write(chunk)) {
      from.pause()
      flow.paused.inc()
      poll ??= setInterval(() => {
        // TCP_CLOSE: a reset (or a retransmission timeout) ended the connection; its error is still pending.
        if (tcpInfoOf(from)?.state !== TCP_CLOSE) return
        stopPolling()
        from.destroy(takePendingError(from) ?? Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }))
      }, pausedPollMs).unref()
    }
  })
  to.on('drain', () => {
    stopPolling()
    if (from.isPaused()) {
      from.resume()
      flow.resumed.inc()
    }
  })
  from.once('close', stopPolling)
  from.once('end', () => {
    // An RST right behind the last bytes reaches node:net as 'end' (libuv reads a hang-up after a short read
    // as end of file); passing it on as a FIN would make a cut-short stream look whole. It is still pending
    // on the socket, so take it and fail the side as the reset it was.
    const reset = takePendingError(from)
    if (reset) from.destroy(reset)
    else if (!to.destroyed) to.end()
  })
}
