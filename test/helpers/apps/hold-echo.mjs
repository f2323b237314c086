// A test app: opens one connection to HOST:PORT, sends 'a' and waits for its echo, prints {"held":true}; on
// SIGUSR2 sends 'b' on the same connection and prints {"second":"b"} once it comes back (or the error).
// Exits after 60 s at most. usage: hold-echo.mjs HOST PORT
import { connect } from 'node:net'

const [host = '', port = '0'] = process.argv.slice(2)
const socket = connect({ host, port: Number(port) })
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n')
let got = ''
socket.on('error', (err) => say({ error: err.code ?? err.message }))
socket.on('close', () => say({ closed: true }))
socket.once('connect', () => socket.write('a'))
socket.on('data', (d) => {
  got += d
  if (got === 'a') say({ held: true })
  if (got === 'ab') say({ second: 'b' })
})
process.on('SIGUSR2', () => socket.write('b'))
setTimeout(() => process.exit(0), 60_000)
