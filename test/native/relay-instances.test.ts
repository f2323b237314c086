// The relay engine is per Node-API env (instance data), not per process: a worker thread that loads the addon
// has an engine of its own beside the main thread's, and its env's teardown stops it.
import { randomBytes } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { addonPath } from '../../src/native/addon.js'
import { relayStats, relayStop } from '../../src/native/relay.js'
import { drain, relayed, sha, start, within } from '../helpers/relay-harness.js'

// In the worker: its own engine, started beside the main thread's, and its connection count; then the worker
// ends without relayStop (the env's cleanup hook stops the thread).
const script = `
const { parentPort } = require('node:worker_threads')
const a = require(${JSON.stringify(addonPath())})
try {
  a.relayStart(() => {}, { bufferLimitBytes: 65536, connectTimeoutMs: 1000, idleTimeoutMs: 0 })
  parentPort.postMessage({ started: true, connections: a.relayStats().connections })
} catch (err) {
  parentPort.postMessage({ started: false, error: err.code + ': ' + err.message })
}
`

t.test("a worker's engine is its own: it starts beside the main thread's, and stops with the worker", async (t) => {
  start()
  t.teardown(() => relayStop())
  const r = await relayed(t)
  const up = await r.upstream
  t.equal(relayStats().connections, 1, "the main thread's engine holds one connection")
  const worker = new Worker(script, { eval: true })
  const message = within(new Promise((resolve) => worker.once('message', resolve)), "the worker's answer")
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
  t.same(await message, { started: true, connections: 0 }, 'the worker started an engine of its own, with no connection')
  t.equal(await within(exited, "the worker's exit"), 0, 'the worker ended, its engine stopped by the env cleanup')
  // The main thread's engine went on through all that.
  const data = randomBytes(1024 * 1024)
  const got = drain(up)
  r.client.end(data)
  t.same(await got, { bytes: data.length, sha: sha(data), error: null }, "the main thread's connection relays 1 MiB whole")
  up.end()
  t.equal((await r.closed).close, 'clean', 'and closes cleanly')
})
