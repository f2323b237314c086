// @ts-check
// The floor: the least a Node sidecar can do in sidecar-lab's position. Listeners on 15001 and 15006 with
// node:net, the original destination from our addon, a new connection to it (inbound from 127.0.0.6), bytes
// relayed with backpressure and half-close, and nothing else: no stats, timers, loop guard, access log or
// logger. Not a sidecar to use (no drain, no timeouts, no limits); it shows which part of sidecar-lab's cost
// is Node's own. Run it as the uid the capture rules exempt. usage: floor-relay.mjs
import { connect, createServer } from 'node:net'

/** @type {typeof import('../../src/native/sockopt.js')} */
const { originalDst } = await import(new URL('../../dist/native/sockopt.js', import.meta.url).href)

/** @param {import('node:net').Socket} from @param {import('node:net').Socket} to */
function relay(from, to) {
  from.on('data', (chunk) => {
    if (!to.write(chunk)) from.pause()
  })
  to.on('drain', () => from.resume())
  from.once('end', () => to.end())
}

/** @param {boolean} inbound */
function listener(inbound) {
  return createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (down) => {
    down.on('error', () => {})
    let dst
    try {
      dst = originalDst(down)
    } catch {
      // dst stays undefined: closed below like a connection that was not redirected
    }
    if (!dst) return void down.destroy()
    const source = inbound ? (dst.family === 6 ? '::6' : '127.0.0.6') : undefined
    const up = connect({
      host: dst.address,
      port: dst.port,
      family: dst.family,
      allowHalfOpen: true,
      noDelay: true,
      ...(source ? { localAddress: source } : {}),
    })
    up.on('error', () => down.resetAndDestroy())
    down.on('error', () => up.resetAndDestroy())
    // One side fully closed: finish the other only once its bytes are out and its peer's FIN was read.
    up.once('close', () => down.writableFinished && down.readableEnded && down.destroy())
    down.once('close', () => up.writableFinished && up.readableEnded && up.destroy())
    up.once('connect', () => {
      relay(down, up)
      relay(up, down)
      down.resume()
    })
  })
}

listener(false).listen({ port: 15001, host: '::', backlog: 4096 })
listener(true).listen({ port: 15006, host: '::', backlog: 4096 })
process.stdout.write('floor relay listening on 15001 and 15006\n')
