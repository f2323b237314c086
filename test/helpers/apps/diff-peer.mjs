// One end of the relay differential test's connections (test/integration/relay-differential.test.ts), driven
// step by step by the test over a Unix socket (pathname sockets cross network namespaces; the file system is
// shared). Each step is done only when the other end observed it (bytes counted, FIN or RST seen), so a plan
// gives the same bytes and closes whichever relay engine is in between.
// usage: diff-peer.mjs client CONTROL_SOCKET | diff-peer.mjs server CONTROL_SOCKET PORT
// Commands (JSON lines, each with a seq the reply repeats): open {id, host, port, localPort?} (client), send {id, bytes,
// dataSeed}, fin {id}, reset {id}, await {id, rx | end | closed, timeoutMs}, report {id}. The server reports
// each accepted connection unasked: {ev: 'accepted', id} once the 8-byte preamble "diff0042" arrived.
import { createHash } from 'node:crypto'
import { connect, createConnection, createServer } from 'node:net'
import { createInterface } from 'node:readline'

const [role, controlPath, port] = process.argv.slice(2)
const PREAMBLE = 8
const conns = new Map()
const control = createConnection(controlPath)
const reply = (msg) => control.write(JSON.stringify(msg) + '\n')

/** Deterministic bytes for a plan: xorshift32 from the step's seed, so both runs send the same stream. */
function data(bytes, seed) {
  const words = new Uint32Array(Math.ceil(bytes / 4))
  let x = seed >>> 0 || 0x9e3779b9
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
  return Buffer.from(words.buffer, 0, bytes)
}

/** What one end saw: bytes (hashed), and the order of FIN/RST/errors in and out. */
function track(id, socket) {
  const c = { id, socket, rx: 0, hash: createHash('sha256'), events: [], closed: false, waiters: [] }
  const wake = () => {
    for (const w of c.waiters.splice(0)) w()
  }
  socket.on('data', (chunk) => {
    c.rx += chunk.length
    c.hash.update(chunk)
    wake()
  })
  socket.on('end', () => {
    c.events.push('fin')
    wake()
  })
  socket.on('error', (err) => {
    c.events.push(err.code === 'ECONNRESET' ? 'rst' : err.code || err.message)
    wake()
  })
  socket.on('close', () => {
    c.closed = true
    wake()
  })
  conns.set(id, c)
  return c
}

const state = (c) => ({ rx: c.rx, events: c.events, closed: c.closed })

function waitFor(c, met, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ...state(c), timeout: true }), timeoutMs)
    const check = () => {
      if (met() || c.closed) {
        clearTimeout(timer)
        return resolve(state(c))
      }
      c.waiters.push(check)
    }
    check()
  })
}

async function handle(cmd) {
  const c = conns.get(cmd.id)
  switch (cmd.op) {
    case 'open': {
      const socket = connect({
        host: cmd.host,
        port: cmd.port,
        allowHalfOpen: true,
        ...(cmd.localPort ? { localPort: cmd.localPort } : {}),
      })
      const conn = track(cmd.id, socket)
      await new Promise((resolve) => {
        socket.once('connect', resolve)
        socket.once('close', resolve)
      })
      if (!conn.closed) socket.write(`diff${String(cmd.id).padStart(4, '0')}`)
      return { ...state(conn), port: socket.localPort }
    }
    case 'send': {
      if (c.socket.destroyed || c.socket.writableEnded) return { ...state(c), refused: true }
      await new Promise((resolve) => c.socket.write(data(cmd.bytes, cmd.dataSeed), resolve))
      return state(c)
    }
    case 'fin':
      c.events.push('fin-sent')
      await new Promise((resolve) => c.socket.end(resolve))
      return state(c)
    case 'reset':
      if (!c.socket.destroyed) {
        c.events.push('rst-sent')
        c.socket.resetAndDestroy()
      }
      return state(c)
    case 'await': {
      const met = cmd.rx !== undefined ? () => c.rx >= cmd.rx : cmd.end ? () => c.events.includes('fin') : () => false
      return waitFor(c, met, cmd.timeoutMs)
    }
    case 'report':
      return { ...state(c), sha256: c.hash.digest('hex') }
    default:
      throw new Error(`unknown op ${cmd.op}`)
  }
}

createInterface({ input: control }).on('line', (line) => {
  const cmd = JSON.parse(line)
  handle(cmd).then(
    (result) => reply({ seq: cmd.seq, ...result }),
    (err) => reply({ seq: cmd.seq, error: String(err?.stack ?? err) }),
  )
})
control.on('close', () => process.exit(0))

if (role === 'server') {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    // Until the preamble names the connection, its bytes are held back (unshift) for the tracked reader.
    let head = Buffer.alloc(0)
    socket.on('error', () => {})
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk])
      if (head.length < PREAMBLE) return
      socket.off('data', onHead)
      socket.pause()
      const id = Number(head.subarray(4, PREAMBLE).toString())
      track(id, socket)
      if (head.length > PREAMBLE) socket.unshift(head.subarray(PREAMBLE))
      socket.resume()
      reply({ ev: 'accepted', id })
    }
    socket.on('data', onHead)
  })
  server.listen({ port: Number(port), host: '::' }, () => reply({ ev: 'listening' }))
} else reply({ ev: 'ready' })
