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

export interface FrameHandlers {
  onMessage(msg: Buffer): void
  onError(err: Error): void
  /**
   * Asked before each message is handed on: false pauses reading with the message kept, until resume().
   * One chunk can hold thousands of small queries, so pausing the socket alone would not stop them.
   */
  ready?(): boolean
  /** After each chunk is taken apart: whether part of a message is held waiting for the rest. */
  onChunk?(partial: boolean): void
}

export class FrameReader {
  readonly #socket: Socket
  readonly #maxSize: number
  readonly #h: FrameHandlers
  #pending: Buffer = Buffer.alloc(0)
  #paused = false
  #stopped = false

  constructor(socket: Socket, maxSize: number, handlers: FrameHandlers) {
    this.#socket = socket
    this.#maxSize = maxSize
    this.#h = handlers
    socket.on('data', (chunk: Buffer) => {
      if (this.#stopped) return
      this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk
      this.#drain()
      if (!this.#stopped) this.#h.onChunk?.(this.partial)
    })
  }

  /** Paused by ready() (or pause()): complete messages may be held, none is handed on. */
  get paused(): boolean {
    return this.#paused
  }

  /** Part of a message is held and the rest is the peer's to send (not ours to read: we are not paused). */
  get partial(): boolean {
    if (this.#paused || this.#pending.length === 0) return false
    return this.#pending.length < 2 || this.#pending.length < 2 + this.#pending.readUInt16BE(0)
  }

  pause(): void {
    this.#paused = true
    this.#socket.pause()
  }

  /** Hands on the messages held (while ready() lets it), then reads the socket again. */
  resume(): void {
    if (this.#stopped || !this.#paused) return
    this.#paused = false
    this.#drain()
    if (!this.#paused && !this.#stopped) this.#socket.resume()
  }

  /** Reads nothing more, ever (a bad frame or the connection ending). */
  stop(): void {
    this.#stopped = true
    this.#paused = true
    this.#pending = Buffer.alloc(0)
    this.#socket.pause()
  }

  #drain(): void {
    while (!this.#paused && !this.#stopped && this.#pending.length >= 2) {
      const size = this.#pending.readUInt16BE(0)
      if (size === 0 || size > this.#maxSize) {
        this.stop()
        this.#h.onError(new FrameError(`TCP frame of ${size} bytes (allowed 1 to ${this.#maxSize})`))
        return
      }
      if (this.#pending.length < 2 + size) break
      if (this.#h.ready && !this.#h.ready()) return this.pause()
      const msg = this.#pending.subarray(2, 2 + size)
      this.#pending = this.#pending.subarray(2 + size)
      this.#h.onMessage(msg)
    }
  }
}

export function readFrames(socket: Socket, maxSize: number, onMessage: (msg: Buffer) => void, onError: (err: Error) => void): FrameReader {
  return new FrameReader(socket, maxSize, { onMessage, onError })
}
