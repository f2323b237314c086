// The addon's relay engine on real loopback sockets, without the sidecar, for test/native/relay*.test.ts: a
// front server hands each accepted socket's fd to relayAdd (as the listener does), and the engine relays it to
// an upstream server. One engine per process: start() (re)starts it with the tests' defaults.
import { createHash } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'
import { addonPath } from '../../src/native/addon.js'
import {
  relayAdd,
  relayFaultInjection,
  relayStart,
  relayStop,
  type RelayBind,
  type RelayDown,
  type RelayEvent,
  type RelayOptions,
} from '../../src/native/relay.js'
import { socketFd, takePendingError } from '../../src/native/sockopt.js'

export type Closed = Extract<RelayEvent, { type: 'closed' }>

const listeners = new Map<number, (e: RelayEvent) => void>()
let lastId = 0

/** (Re)starts the engine; `down` is its down notice (relayStart's onDown), if one comes. */
export function start(opts: Partial<RelayOptions> = {}): { down: Promise<RelayDown> } {
  let onDown: (d: RelayDown) => void = () => {}
  const down = new Promise<RelayDown>((resolve) => (onDown = resolve))
  relayStart(
    (events) => events.forEach((e) => listeners.get(e.id)?.(e)),
    { bufferLimitBytes: 256 * 1024, connectTimeoutMs: 5000, idleTimeoutMs: 0, ...opts },
    onDown,
  )
  return { down }
}

/**
 * The fault tests run only where native/faults.h's switch exists (the sanitizer build): `npm run test:asan`
 * sets SIDECAR_LAB_EXPECT_FAULTS=1, and there a build without it is a failure; elsewhere they skip with the reason.
 */
export function faultsOnly(): { skip?: string } {
  if (relayFaultInjection()) return {}
  if (process.env.SIDECAR_LAB_EXPECT_FAULTS === '1') {
    throw new Error(`SIDECAR_LAB_EXPECT_FAULTS=1 but the addon at ${addonPath()} has no fault switch (-DSIDECAR_LAB_FAULTS)`)
  }
  return { skip: `the addon at ${addonPath()} is not the fault-injection build (npm run test:asan runs these)` }
}

/** (Re)starts the engine with these faults (SIDECAR_LAB_FAULTS), and without any once the test is done. */
export function withFaults(t: Test, spec: string, opts: Partial<RelayOptions> = {}): { down: Promise<RelayDown> } {
  relayStop()
  process.env.SIDECAR_LAB_FAULTS = spec
  const started = start({ bufferLimitBytes: 256 * 1024, ...opts })
  t.teardown(() => {
    relayStop()
    delete process.env.SIDECAR_LAB_FAULTS
  })
  return started
}

/** p, or a rejection naming what never came: a bound for a hang, not a speed. */
export function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms / 1000} s`)), ms)
  })
  return Promise.race([p, bound]).finally(() => clearTimeout(timer))
}

/** How a socket ends: its error's code, or undefined for a plain close. */
/**
 * How a socket's peer ended: an error code (ECONNRESET), or undefined for a clean end. It reads what arrives, and
 * an end is checked for a pending error: libuv reports an RST that came in behind bytes it had not read yet as
 * an end of stream (a short read with POLLHUP), leaving the reset in the socket's SO_ERROR.
 */
export function ending(s: Socket): Promise<string | undefined> {
  s.resume()
  return new Promise((resolve) => {
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code))
    s.on('end', () => {
      const pending = takePendingError(s)
      if (pending) resolve(pending.code)
    })
    s.on('close', () => resolve(undefined))
  })
}

export async function listen(t: Test, server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  return (server.address() as { port: number }).port
}

export interface Relayed {
  id: number
  client: Socket
  events: RelayEvent[]
  closed: Promise<Closed>
  /** the upstream server's side of the connection */
  upstream: Promise<Socket>
}

/**
 * A client connection relayed by the engine to a fresh upstream server (or to upstreamPort); bind: an address, or
 * relayAdd's bind. With `gate`, the accepted socket waits for it before it goes to relayAdd (bytes the client sent
 * are in the socket by then).
 */
export async function relayed(t: Test, upstreamPort?: number, bind: string | RelayBind = {}, gate?: Promise<unknown>): Promise<Relayed> {
  let upstream: Promise<Socket> = new Promise(() => {})
  if (upstreamPort === undefined) {
    const server = createServer({ allowHalfOpen: true })
    upstream = new Promise((r) => server.once('connection', r))
    upstreamPort = await listen(t, server)
  }
  const id = ++lastId
  const events: RelayEvent[] = []
  const closed = new Promise<Closed>((resolve) => {
    listeners.set(id, (e) => {
      events.push(e)
      if (e.type === 'closed') resolve(e)
    })
  })
  const front = createServer({ pauseOnConnect: true, allowHalfOpen: true }, async (s) => {
    await gate
    relayAdd(id, socketFd(s), { address: '127.0.0.1', port: upstreamPort, family: 4 }, typeof bind === 'string' ? { address: bind } : bind)
    s.destroy()
  })
  const client = connect({ port: await listen(t, front), host: '127.0.0.1', allowHalfOpen: true })
  client.on('error', () => {})
  t.teardown(() => {
    client.destroy()
    listeners.delete(id)
  })
  upstream.then((s) => {
    s.on('error', () => {})
    t.teardown(() => s.destroy())
  })
  return { id, client, events, closed, upstream }
}

/** Everything a socket receives until its end (or error), hashed. */
export function drain(s: Socket): Promise<{ bytes: number; sha: string; error: string | null }> {
  const hash = createHash('sha256')
  let bytes = 0
  s.on('data', (c: Buffer) => {
    bytes += c.length
    hash.update(c)
  })
  return new Promise((resolve) => {
    let done = false
    const finish = (error: string | null) => {
      if (done) return
      done = true
      resolve({ bytes, sha: hash.digest('hex'), error })
    }
    s.on('end', () => finish(null))
    s.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'error'))
    s.on('close', () => finish(null))
  })
}

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
