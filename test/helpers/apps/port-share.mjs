// A test app: holds HELD connections open to HOST:PORT_A (each sends one byte and waits for its echo, so the
// sidecars' upstream connections exist), then makes SHORT connections one after another to HOST:PORT_B (one
// byte, its echo, close). Prints one JSON line, then keeps the held connections open until killed (60 s at
// most). usage: port-share.mjs HOST PORT_A PORT_B HELD SHORT
import { connect } from 'node:net'

const [host = '', portA = '0', portB = '0', heldText = '0', shortText = '0'] = process.argv.slice(2)
const held = []
const errors = []
const shortPorts = []

function echoOnce(port, keep) {
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) })
    let local = 0
    socket.once('connect', () => {
      local = socket.localPort
      socket.write('x')
    })
    socket.once('data', () => {
      if (keep) held.push(socket)
      else socket.end()
      resolve(local)
    })
    socket.once('error', (err) => {
      errors.push(`${port} from ${local}: ${err.code ?? err.message}`)
      resolve(0)
    })
    socket.once('close', () => resolve(0))
  })
}

const t0 = Date.now()
for (let i = 0; i < Number(heldText); i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, Number(heldText) - i) }, () => echoOnce(portA, true)))
}
let ok = 0
for (let i = 0; i < Number(shortText); i++) {
  const local = await echoOnce(portB, false)
  if (local) {
    ok++
    shortPorts.push(local)
  }
}
process.stdout.write(JSON.stringify({ held: held.length, short: ok, errors, shortPorts, ms: Date.now() - t0 }) + '\n')
setTimeout(() => process.exit(0), 60_000)
