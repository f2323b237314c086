// What the HBONE tests share: an app on loopback whose each connection a test handles, an HboneServer in
// front of it (dial: a plain net.connect, half-open as the ztunnel's), and reading a stream to its end.
import { createHash } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { HboneServer, type HboneServerOptions } from '../../src/ambient/hbone/index.js'
import type { Pem } from './hbone-certs.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Everything a stream gives until its end; rejects on its error. */
export function collect(s: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    s.on('data', (b: Buffer) => parts.push(b))
    s.once('end', () => resolve(Buffer.concat(parts)))
    s.once('error', reject)
  })
}

/** An app on 127.0.0.1 (half-open sockets); `handle` gets each connection, an echo by default. */
export async function startApp(t: Teardown, handle: (s: Socket) => void = (s) => s.pipe(s)): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
    handle(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as { port: number }).port
}

/** An HboneServer on 127.0.0.1 serving targets on 127.0.0.1 only, its dial a half-open net.connect. */
export async function startHbone(
  t: Teardown,
  pem: Pem,
  extra: Partial<HboneServerOptions> = {},
): Promise<{ server: HboneServer; via: { address: string; port: number } }> {
  const server = new HboneServer({
    identity: pem,
    accepts: (target) => target.address === '127.0.0.1',
    dial: (target) =>
      new Promise((resolve, reject) => {
        const s = connect({ host: target.address, port: target.port, allowHalfOpen: true })
        s.once('connect', () => {
          s.off('error', reject)
          resolve(s)
        })
        s.once('error', reject)
      }),
    ...extra,
  })
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  return { server, via: { address: '127.0.0.1', port } }
}

/** Resolves on an event, rejects if `ms` passes first (a bound on a wait, not a timing assertion). */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, ms = 5000): Promise<T> {
  const p = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' in ${ms} ms`)), ms)
    timer.unref()
    emitter.once(event, (v: T) => {
      clearTimeout(timer)
      resolve(v)
    })
  })
  p.catch(() => {}) // a test that failed before awaiting it must not end the file on an unhandled rejection
  return p
}
