// Idle proxied connections, for memory per connection: on each stdin line "N" it opens connections until N
// are up (each counts once the server's one-byte greeting arrived, so the whole chain through both sidecars
// exists), prints { open, ms, errors }, then waits. Closing stdin (or the time limit) closes everything.
// usage: idle-client.mjs HOST PORT [MAX_SECONDS]
import { connect } from 'node:net'
import { createInterface } from 'node:readline'

const [host = '', port = '0', maxSecondsText = '600'] = process.argv.slice(2)
const inFlightLimit = 100
/** @type {import('node:net').Socket[]} */
const sockets = []
let open = 0
let errors = 0

/** @param {number} target */
function openUntil(target) {
  const t0 = Date.now()
  return new Promise((resolve) => {
    let inFlight = 0
    const next = () => {
      if (open >= target || errors > 100) {
        if (inFlight === 0) resolve({ open, ms: Date.now() - t0, errors })
        return
      }
      while (inFlight < inFlightLimit && open + inFlight < target) {
        inFlight++
        const socket = connect({ host, port: Number(port) })
        let counted = false
        socket.once('data', () => {
          counted = true
          open++
          inFlight--
          next()
        })
        socket.on('error', () => {
          if (!counted) {
            errors++
            inFlight--
            next()
          }
        })
        sockets.push(socket)
      }
    }
    next()
  })
}

const lines = createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  const result = await openUntil(Number(line))
  process.stdout.write(JSON.stringify(result) + '\n')
})
lines.on('close', () => {
  for (const s of sockets) s.destroy()
  process.exit(0)
})
setTimeout(() => process.exit(0), Number(maxSecondsText) * 1000).unref()
