// A test app for the HBONE tests: connects, sends TEXT, and prints what came back and how the connection
// ended as one JSON line. Mode `once`: shuts its write side after TEXT and reads to the end. Mode `hold`:
// prints {"event":"echoed"} once TEXT came back and keeps the connection open until the peer closes it.
// usage: marker-client.mjs HOST PORT TEXT [once|hold]
import { connect } from 'node:net'

const [host, port, text = '', mode = 'once'] = process.argv.slice(2)
const socket = connect({ host, port: Number(port), allowHalfOpen: true })
let got = ''
let announced = false
socket.on('connect', () => {
  socket.write(text)
  if (mode === 'once') socket.end()
})
socket.on('data', (b) => {
  got += b.toString('latin1')
  if (mode === 'hold' && !announced && got.length >= text.length) {
    announced = true
    console.log(JSON.stringify({ event: 'echoed', received: got }))
  }
})
let error = null
socket.on('error', (err) => (error = err.code ?? err.message))
socket.on('close', () => console.log(JSON.stringify({ event: 'closed', received: got, error })))
