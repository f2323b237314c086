// A test app for the loop guard under NAT port clashes (issue 10, item 3), in two roles.
//   nat-clash.mjs server PORT...   on each PORT: send one byte on accept, read to EOF, then end.
//   nat-clash.mjs client HOST SHORT_PORT SHORT HELD_PORT HELD BATCHES [SECONDS] [SHORT_PARALLEL]
//     per batch: SHORT short connections (SHORT_PARALLEL at a time, default 1: one after another) to HOST:SHORT_PORT (wait for the byte, end), then HELD
//     concurrent connections to HOST:HELD_PORT, each waiting for its byte and then held open while the rest
//     of the batch connects (a reset then is a torn-down established connection), then all are ended.
//     The short connections leave conntrack entries behind (TIME_WAIT, 120 s) whose reply tuples the new
//     connections' redirected tuples clash with, so NAT rewrites their source ports at random: the case
//     that looked like a loop. Prints one JSON line per batch; starts no batch after SECONDS (default 170).
import { connect, createServer } from 'node:net'

const [role, ...args] = process.argv.slice(2)

if (role === 'server') {
  for (const port of args) {
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {})
      socket.write('x')
      socket.resume()
      socket.on('end', () => socket.end())
    })
    server.listen({ port: Number(port), host: '::', backlog: 4096 }, () =>
      process.stdout.write(JSON.stringify({ event: 'listening', port: Number(port) }) + '\n'),
    )
  }
  process.on('SIGTERM', () => process.exit(0))
} else {
  const [
    host = '',
    shortPort = '0',
    shortText = '0',
    heldPort = '0',
    heldText = '0',
    batchText = '1',
    seconds = '170',
    parallelText = '1',
  ] = args
  const deadline = Date.now() + Number(seconds) * 1000
  // Resolves when the byte arrived (or the connection failed first); failures after the byte are counted too.
  function open(port, tally) {
    return new Promise((resolve) => {
      const socket = connect({ host, port: Number(port) })
      let got = false
      socket.once('data', () => {
        got = true
        resolve(socket)
      })
      socket.on('error', (err) => {
        const code = err.code ?? err.message
        tally[got ? `after_byte_${code}` : code] = (tally[got ? `after_byte_${code}` : code] ?? 0) + 1
      })
      socket.once('close', () => {
        if (!got) {
          tally.closed_without_byte = (tally.closed_without_byte ?? 0) + 1
          resolve(undefined)
        }
      })
    })
  }
  function end(socket) {
    return new Promise((resolve) => {
      socket.once('close', resolve)
      socket.end()
    })
  }
  for (let batch = 0; batch < Number(batchText) && Date.now() < deadline; batch++) {
    const t0 = Date.now()
    const failures = {}
    let short = 0
    const shortOne = async () => {
      const s = await open(shortPort, failures)
      if (s) {
        short++
        await end(s)
      }
    }
    for (let i = 0; i < Number(shortText); i += Number(parallelText)) {
      await Promise.all(Array.from({ length: Math.min(Number(parallelText), Number(shortText) - i) }, shortOne))
    }
    const shortMs = Date.now() - t0
    const held = (await Promise.all(Array.from({ length: Number(heldText) }, () => open(heldPort, failures)))).filter(Boolean)
    // the connections are all open now; a reset of an established one shows up here
    await new Promise((r) => setTimeout(r, 300))
    const alive = held.filter((s) => !s.destroyed)
    await Promise.all(alive.map(end))
    process.stdout.write(
      JSON.stringify({ batch, short, held: held.length, alive: alive.length, failures, shortMs, ms: Date.now() - t0 }) + '\n',
    )
  }
  process.stdout.write(JSON.stringify({ done: true }) + '\n')
}
