// Joins an HTTP/2 stream (one HBONE tunnel) and a byte stream (the connection to the target, or the app's
// side on the client) as a TCP proxy would: a FIN either way is END_STREAM the same way and back, each
// direction closing on its own; a reset of either side resets the other (RST_STREAM towards the peer, a TCP
// RST towards the target), so a cut stream never looks like a clean end. The RST_STREAM is INTERNAL_ERROR, not
// RFC 9113's CONNECT_ERROR: Node's stream.close(code) sends END_STREAM before the RST_STREAM when the stream's
// writable side is open, and a peer reading the END_STREAM first takes it for a clean end; destroy(err) does not.
import { constants as h2c, type Http2Stream } from 'node:http2'
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

export interface SpliceResult {
  /** bytes from the HTTP/2 stream to the other side, and back */
  toUpstream: number
  fromUpstream: number
  /** ended by a reset or an error of either side, not by both directions closing */
  reset: boolean
}

/** Resets a byte stream: a TCP RST for a socket (resetAndDestroy), destroy() otherwise. */
export function resetDuplex(d: Duplex): void {
  if (d instanceof Socket && !d.destroyed && d.readyState !== 'opening') d.resetAndDestroy()
  else d.destroy()
}

/** RST_STREAM (INTERNAL_ERROR) and nothing before it. */
export function resetStream(stream: Http2Stream, why: Error): void {
  if (!stream.destroyed) stream.destroy(why)
}

export function splice(stream: Http2Stream, upstream: Duplex, done: (r: SpliceResult) => void): void {
  const r: SpliceResult = { toUpstream: 0, fromUpstream: 0, reset: false }
  let upEnded = false
  let upFinished = false
  let open = 2
  const closed = (): void => {
    if (--open === 0) done(r)
  }
  stream.on('data', (b: Buffer) => (r.toUpstream += b.length))
  upstream.on('data', (b: Buffer) => (r.fromUpstream += b.length))
  upstream.once('end', () => (upEnded = true))
  upstream.once('finish', () => (upFinished = true))
  // END_STREAM becomes a FIN, unless the session is gone: a session whose TCP connection closed without a
  // GOAWAY (the peer's ztunnel killed) ends its streams as if cleanly (Node pushes their end at close); that is a
  // cut, and the other side must see a reset, not a whole stream
  stream.pipe(upstream, { end: false })
  stream.once('end', () => {
    const session = stream.session
    if (!session || session.destroyed || session.closed) {
      r.reset = true
      resetDuplex(upstream)
      resetStream(stream, new Error('the HTTP/2 session ended before the stream did'))
      return
    }
    upstream.end()
  })
  upstream.pipe(stream)

  stream.on('error', () => {}) // a RST_STREAM surfaces as an error; its close below says what happened
  stream.once('close', () => {
    if (stream.rstCode !== h2c.NGHTTP2_NO_ERROR || !stream.readableEnded) {
      r.reset = true
      resetDuplex(upstream)
    }
    closed()
  })
  upstream.on('error', (err) => {
    r.reset = true
    resetStream(stream, err)
  })
  upstream.once('close', () => {
    if (!(upEnded && upFinished) && !stream.closed) {
      r.reset = true
      resetStream(stream, new Error('the other side closed before both directions ended'))
    }
    closed()
  })
}
