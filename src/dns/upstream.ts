// Forwarding to the resolv.conf servers, as Istio's agent does it (miekg/dns Client.Exchange): a fresh UDP
// socket per query, so every query leaves from its own random source port (a guessed port cannot spoof
// it), the reply must carry the query's ID and question, and a truncated reply is asked again over TCP.
// The sockets belong to the sidecar's uid (1337), which is what lets the capture rules tell them apart.
import { createSocket, type Socket } from 'node:dgram'
import { connect } from 'node:net'
import { isIP } from 'node:net'
import { readFrames, frame } from './tcp-frames.js'
import { decode, maxMessageSize, questionSection, sameQuestion, tryDecode, type DecodedPacket } from './message.js'
import type { Nameserver } from './resolv-conf.js'

export interface UpstreamResult {
  response: Buffer
  server: Nameserver
  protocol: 'udp' | 'tcp'
  /** the UDP socket's local port: the trace matches it to conntrack's zone 1 entry */
  localPort: number
}

export interface UpstreamHooks {
  /** a datagram that matched no query in flight (wrong ID or question): dropped */
  unmatched(): void
  /** one try at one server, with its outcome */
  attempt(server: Nameserver, ok: boolean, ms: number): void
}

export class UpstreamError extends Error {}

export class Forwarder {
  readonly servers: Nameserver[]
  readonly #timeoutMs: number
  readonly #hooks: UpstreamHooks

  constructor(servers: Nameserver[], timeoutMs: number, hooks: UpstreamHooks) {
    this.servers = servers
    this.#timeoutMs = timeoutMs
    this.#hooks = hooks
  }

  /**
   * Each server in order until one answers; the whole forward takes at most the timeout, shared among
   * the servers still to try, so one silent server cannot eat the others' time.
   */
  async forward(raw: Buffer, query: DecodedPacket): Promise<UpstreamResult> {
    const deadline = Date.now() + this.#timeoutMs
    let lastError: unknown = new UpstreamError('no upstream nameserver configured')
    for (let i = 0; i < this.servers.length; i++) {
      const server = this.servers[i]!
      const budget = (deadline - Date.now()) / (this.servers.length - i)
      if (budget <= 0) break
      const started = process.hrtime.bigint()
      try {
        const result = await this.#exchange(server, raw, query, budget)
        this.#hooks.attempt(server, true, msSince(started))
        return result
      } catch (err) {
        this.#hooks.attempt(server, false, msSince(started))
        lastError = err
      }
    }
    throw lastError
  }

  async #exchange(server: Nameserver, raw: Buffer, query: DecodedPacket, budgetMs: number): Promise<UpstreamResult> {
    const deadline = Date.now() + budgetMs
    const udp = await this.#udp(server, raw, query, budgetMs)
    if (!decode(udp.response).flag_tc) return { ...udp, server, protocol: 'udp' }
    const tcp = await this.#tcp(server, raw, query, Math.max(1, deadline - Date.now()))
    return { response: tcp, server, protocol: 'tcp', localPort: udp.localPort }
  }

  #udp(server: Nameserver, raw: Buffer, query: DecodedPacket, timeoutMs: number): Promise<{ response: Buffer; localPort: number }> {
    return new Promise((resolve, reject) => {
      const socket: Socket = createSocket(isIP(server.address) === 6 ? 'udp6' : 'udp4')
      let localPort = 0
      const done = (err: Error | null, response?: Buffer) => {
        clearTimeout(timer)
        socket.removeAllListeners('message')
        socket.close()
        if (err) reject(err)
        else resolve({ response: response!, localPort })
      }
      const timer = setTimeout(
        () => done(new UpstreamError(`no answer from ${label(server)} within ${Math.round(timeoutMs)} ms`)),
        timeoutMs,
      )
      socket.on('error', (err) => done(err))
      socket.on('message', (msg) => {
        const m = tryDecode(msg)
        if (!m || m.type !== 'response' || m.id !== query.id || !sameQuestion(questionSection(msg), questionSection(raw))) {
          this.#hooks.unmatched()
          return
        }
        done(null, msg)
      })
      // connect(): only this server's datagrams reach the socket, and an ICMP port unreachable comes back
      // as ECONNREFUSED at once instead of waiting for the timeout.
      socket.connect(server.port, server.address, () => {
        localPort = socket.address().port
        socket.send(raw, (err) => err && done(err))
      })
    })
  }

  #tcp(server: Nameserver, raw: Buffer, query: DecodedPacket, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: server.address, port: server.port })
      const timer = setTimeout(
        () => fail(new UpstreamError(`no TCP answer from ${label(server)} within ${Math.round(timeoutMs)} ms`)),
        timeoutMs,
      )
      const fail = (err: Error) => {
        clearTimeout(timer)
        socket.destroy()
        reject(err)
      }
      socket.on('error', fail)
      socket.on('close', () => fail(new UpstreamError(`${label(server)} closed the TCP connection without an answer`)))
      socket.on('connect', () => socket.write(frame(raw)))
      readFrames(
        socket,
        maxMessageSize,
        (msg) => {
          const m = tryDecode(msg)
          if (!m || m.id !== query.id || !sameQuestion(questionSection(msg), questionSection(raw))) return this.#hooks.unmatched()
          clearTimeout(timer)
          socket.removeAllListeners('close')
          socket.destroy()
          resolve(msg)
        },
        (err) => fail(err),
      )
    })
  }
}

export function label(server: Nameserver): string {
  return isIP(server.address) === 6 ? `[${server.address}]:${server.port}` : `${server.address}:${server.port}`
}

function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6
}
