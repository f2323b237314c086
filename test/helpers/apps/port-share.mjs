// A test app: holds HELD connections open to HOST:PORT_A (each sends one byte and waits for its echo, so the
// sidecars' upstream connections exist), then makes SHORT connections one after another to HOST:PORT_B (one
// byte, its echo, close). Which ports the kernel gives is up to it: when none of the SHORT got the port of an
// open upstream socket (uid 1337, to PORT_A, from /proc/net/tcp) while HELD are open, it goes on, up to 5 x
// SHORT, until one did.
// Prints one JSON line, then keeps the held connections open until killed (60 s at most).
// usage: port-share.mjs HOST PORT_A PORT_B HELD SHORT
import { readFileSync } from 'node:fs'
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
/** Local ports of the sidecar's (uid 1337) established sockets to PORT_A, from /proc/net/tcp. */
function upstreamPorts() {
  const ports = new Set()
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8 || f[3] !== '01' || f[7] !== '1337') continue
    if (parseInt(f[2].split(':')[1], 16) === Number(portA)) ports.add(parseInt(f[1].split(':')[1], 16))
  }
  return ports
}

let ok = 0
let tried = 0
const upstream = upstreamPorts()
let sharedSeen = 0
for (let i = 0; i < 5 * Number(shortText) && (i < Number(shortText) || (held.length > 0 && sharedSeen === 0)); i++) {
  tried++
  const local = await echoOnce(portB, false)
  if (local) {
    ok++
    shortPorts.push(local)
    if (upstream.has(local)) sharedSeen++
  }
}
process.stdout.write(
  JSON.stringify({ held: held.length, short: ok, tried, errors, shortPorts, upstream: upstream.size, ms: Date.now() - t0 }) + '\n',
)
setTimeout(() => process.exit(0), 60_000)
