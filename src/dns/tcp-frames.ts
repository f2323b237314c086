// DNS over TCP frames every message with a two-byte length (RFC 1035 4.2.2, RFC 7766). One reader for
// the server's and the forwarder's connections: pipelined messages in one chunk, a message split across
// chunks, and a declared length over the limit (or 0) ends the connection instead of buffering it.
import type { Socket } from 'node:net'

export function frame(message: Buffer): Buffer {
  const head = Buffer.allocUnsafe(2)
  head.writeUInt16BE(message.length)
  return Buffer.concat([head, message])
}

export class FrameError extends Error {}

export function readFrames(socket: Socket, maxSize: number, onMessage: (msg: Buffer) => void, onError: (err: Error) => void): void {
  let pending: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    while (pending.length >= 2) {
      const size = pending.readUInt16BE(0)
      if (size === 0 || size > maxSize) {
        socket.removeAllListeners('data')
        onError(new FrameError(`TCP frame of ${size} bytes (allowed 1 to ${maxSize})`))
        return
      }
      if (pending.length < 2 + size) break
      const msg = pending.subarray(2, 2 + size)
      pending = pending.subarray(2 + size)
      onMessage(msg)
    }
  })
}
