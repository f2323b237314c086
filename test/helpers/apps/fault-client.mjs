// A test app for the fault suite: clients that behave in the ways the suite needs. JSON lines on stdout.
// usage: fault-client.mjs HOST PORT MODE ...
//   download GREETING PROGRESS_AT PAUSE_MS   send GREETING bytes (never ended), read until the end; once past
//             PROGRESS_AT bytes print {event:'progress'}; PAUSE_MS > 0 pauses that long after every chunk (a slow
//             reader). {event:'result', received, sha256, error} at the end ('end' = null error, else the code)
//   upload BYTES   send BYTES (deterministic) with backpressure, then end; {event:'progress', written} every
//             250 ms, {event:'result', written, sha256, received, error} when the server has closed
//   hold N [unread]   open N connections, each sends one byte and waits for its echo; {event:'held', held,
//             errors}; on SIGUSR1 closes them all and prints {event:'released'}. unread: after the first bytes
//             read no more, so what the server sends next waits in the path (the relay's buffers)
//   push-reset N   open N connections, each writes (with backpressure) until its writes have stalled for a
//             second (a peer that does not read); then resets them all (SO_LINGER 0 close) and prints
//             {event:'reset', connections, written}
//   garbage N BYTES   N connections one after another, each sends BYTES random bytes and waits (5 s at most) for
//             the close; {event:'result', ends, resets, timeouts, received}
// Every mode stops by itself after 120 s.
import { createHash, randomBytes } from 'node:crypto'
import { connect } from 'node:net'

const [host = '', portText = '0', mode = '', ...rest] = process.argv.slice(2)
const port = Number(portText)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const code = (err) => err.code ?? err.message
setTimeout(() => process.exit(3), 120_000).unref()

if (mode === 'download') {
  const [greeting = '0', progressAt = '0', pauseMs = '0'] = rest.map(Number)
  const hash = createHash('sha256')
  let received = 0
  let told = false
  const socket = connect({ host, port, allowHalfOpen: true })
  socket.on('connect', () => greeting > 0 && socket.write(Buffer.alloc(greeting, 0x61)))
  socket.on('data', (chunk) => {
    received += chunk.length
    hash.update(chunk)
    if (!told && received >= progressAt) {
      told = true
      out({ event: 'progress', received })
    }
    if (pauseMs > 0) {
      socket.pause()
      setTimeout(() => socket.resume(), pauseMs)
    }
  })
  const finish = (error) => {
    out({ event: 'result', received, sha256: hash.digest('hex'), error })
    process.exit(0)
  }
  socket.on('end', () => finish(null))
  socket.on('error', (err) => finish(code(err)))
} else if (mode === 'upload') {
  const total = Number(rest[0])
  const block = Buffer.alloc(64 * 1024)
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24
  const hash = createHash('sha256')
  let written = 0
  let received = 0
  const socket = connect({ host, port, allowHalfOpen: true })
  const timer = setInterval(() => out({ event: 'progress', written }), 250)
  const pump = () => {
    while (written < total) {
      const piece = block.subarray(0, Math.min(block.length, total - written))
      hash.update(piece)
      written += piece.length
      if (!socket.write(piece)) return void socket.once('drain', pump)
    }
    socket.end()
  }
  socket.on('connect', pump)
  socket.on('data', (d) => (received += d.length))
  const finish = (error) => {
    clearInterval(timer)
    out({ event: 'result', written, sha256: hash.digest('hex'), received, error })
    process.exit(0)
  }
  socket.on('end', () => finish(null))
  socket.on('error', (err) => finish(code(err)))
} else if (mode === 'hold') {
  const n = Number(rest[0])
  const unread = rest[1] === 'unread'
  // a paused socket does not keep node's loop alive: this does, until SIGUSR1
  const alive = unread ? setInterval(() => {}, 60_000) : undefined
  const sockets = []
  const errors = []
  let held = 0
  let settled = 0
  let inFlight = 0
  let next = 0
  // at most 200 handshakes at a time: a burst of 2,000 SYNs at once only tests the listen backlog
  const open = () => {
    while (inFlight < 200 && next < n) {
      next++
      inFlight++
      const socket = connect({ host, port })
      let done = false
      const settle = (ok, err) => {
        if (done) return
        done = true
        inFlight--
        if (ok) held++
        else errors.push(err)
        if (++settled === n) out({ event: 'held', held, errors: errors.slice(0, 10), errorCount: errors.length })
        open()
      }
      socket.on('connect', () => socket.write('x'))
      socket.once('data', () => {
        if (unread) socket.pause()
        settle(true)
      })
      socket.on('error', (err) => settle(false, code(err)))
      socket.on('close', () => settle(false, 'closed'))
      sockets.push(socket)
    }
  }
  open()
  process.on('SIGUSR1', () => {
    for (const s of sockets) s.destroy()
    clearInterval(alive)
    out({ event: 'released' })
    setTimeout(() => process.exit(0), 200)
  })
} else if (mode === 'push-reset') {
  const n = Number(rest[0])
  const block = Buffer.alloc(64 * 1024, 0x62)
  let written = 0
  const stalled = new Set()
  const sockets = Array.from({ length: n }, () => {
    const socket = connect({ host, port })
    socket.on('error', () => {})
    let timer
    const push = () => {
      clearTimeout(timer)
      stalled.delete(socket)
      while (socket.write(block)) written += block.length
      written += block.length
      // no 'drain' for a second: the path stopped taking bytes
      timer = setTimeout(() => stalled.add(socket) && stalled.size === n && resetAll(), 1000)
      socket.once('drain', push)
    }
    socket.on('connect', push)
    return socket
  })
  const resetAll = () => {
    for (const s of sockets) s.resetAndDestroy()
    out({ event: 'reset', connections: n, written })
  }
} else if (mode === 'garbage') {
  const [n = 0, bytes = 0] = rest.map(Number)
  const r = { ends: 0, resets: 0, timeouts: 0, received: 0 }
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => {
      const socket = connect({ host, port })
      const timer = setTimeout(() => {
        r.timeouts++
        socket.destroy()
        resolve()
      }, 5000)
      let finished = false
      const done = (key) => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        r[key]++
        socket.destroy()
        resolve()
      }
      socket.on('connect', () => socket.write(randomBytes(bytes)))
      socket.on('data', (d) => (r.received += d.length))
      socket.on('end', () => done('ends'))
      socket.on('error', () => done('resets'))
    })
  }
  out({ event: 'result', ...r })
  process.exit(0)
} else {
  process.stderr.write(`fault-client: unknown mode ${mode}\n`)
  process.exit(2)
}
