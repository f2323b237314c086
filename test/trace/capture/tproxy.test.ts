// The TPROXY sentence of the second answer names the caller by its connection's role and addresses.
import t from 'tap'
import { parseEndpoint } from '../../../src/net/address.js'
import type { Connection } from '../../../src/trace/capture/steps.js'
import { transparentSentence } from '../../../src/trace/capture/tproxy.js'

const conn = (index: number, role: string, pod: string, client: string, server: string): Connection => ({
  index,
  role,
  pod,
  client: parseEndpoint(client),
  server: parseEndpoint(server),
})

// A TPROXY run's connections as findConnections lists them: productpage's call to reviews, then reviews'
// own call to ratings (Bookinfo's reviews calls ratings on each request).
const run = [
  conn(0, 'app', 'productpage', '198.18.0.10:46084', '198.18.0.20:9080'),
  conn(1, 'outbound sidecar', 'productpage', '198.18.0.10:46100', '198.18.0.20:9080'),
  conn(2, 'inbound sidecar', 'reviews', '198.18.0.10:59065', '198.18.0.20:9080'),
  conn(3, 'app', 'reviews', '198.18.0.20:45374', '198.18.0.30:9080'),
  conn(4, 'outbound sidecar', 'reviews', '198.18.0.20:45380', '198.18.0.30:9080'),
]

t.test("the caller is productpage's sidecar, not reviews' own call to ratings", async (t) => {
  t.match(transparentSentence(run), /from 198\.18\.0\.10 \(the caller, 198\.18\.0\.10:46100\)/)
  t.match(transparentSentence(run.slice(0, 3)), /the caller, 198\.18\.0\.10:46100\)/, 'the same without the call to ratings')
})

t.test('a caller without a sidecar: its own connection', async (t) => {
  const direct = [
    conn(0, 'app', 'productpage', '198.18.0.10:46084', '198.18.0.20:9080'),
    conn(1, 'inbound sidecar', 'reviews', '198.18.0.10:59065', '198.18.0.20:9080'),
  ]
  t.match(transparentSentence(direct), /the caller, 198\.18\.0\.10:46084\)/)
})

t.test('no connection reached the app from the transparent address: no sentence', async (t) => {
  t.equal(transparentSentence([run[2]!, run[3]!]), '')
})
