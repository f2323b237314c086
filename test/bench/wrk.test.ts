// The wrk report parser on reports wrk 4.1.0 (Debian 12) printed: a clean run, one with socket errors and
// non-2xx responses, and the output of a run that could not connect.
import t from 'tap'

interface WrkResult {
  requests: number
  seconds: number
  rps: number
  latencyMs: { p50: number; p75: number; p90: number; p99: number }
  socketErrors: { connect: number; read: number; write: number; timeout: number }
  non2xx: number
}
const wrk = (await import('../../bench/wrk.mjs' as string)) as {
  parseWrk(text: string): WrkResult
  wrkTimeMs(text: string): number
  wrkArgv(url: string, connections: number, seconds: number): string[]
}

const clean = `Running 1s test @ http://127.0.0.1:18913/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   525.66us    1.35ms  22.29ms   93.83%
    Req/Sec    66.80k    26.36k   85.44k    80.00%
  Latency Distribution
     50%  183.00us
     75%  240.00us
     90%    1.15ms
     99%    5.62ms
  66381 requests in 1.00s, 7.91MB read
Requests/sec:  66314.22
Transfer/sec:      7.91MB
`

const withErrors = `Running 1s test @ http://127.0.0.1:18915/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   399.38us  790.91us   7.21ms   88.63%
    Req/Sec    38.44k    15.41k   62.09k    70.00%
  Latency Distribution
     50%   49.00us
     75%  261.00us
     90%    1.33ms
     99%    3.80ms
  38238 requests in 1.00s, 4.65MB read
  Socket errors: connect 0, read 780, write 0, timeout 0
  Non-2xx or 3xx responses: 5463
Requests/sec:  38217.40
Transfer/sec:      4.64MB
`

t.test('a clean report: requests, length, requests/s, the percentiles in ms, no errors', async (t) => {
  const r = wrk.parseWrk(clean)
  t.equal(r.requests, 66381)
  t.equal(r.seconds, 1)
  t.equal(r.rps, 66314.22)
  t.same(r.latencyMs, { p50: 0.183, p75: 0.24, p90: 1.15, p99: 5.62 })
  t.same(r.socketErrors, { connect: 0, read: 0, write: 0, timeout: 0 })
  t.equal(r.non2xx, 0)
})

t.test('socket errors and non-2xx responses are read from their lines', async (t) => {
  const r = wrk.parseWrk(withErrors)
  t.same(r.socketErrors, { connect: 0, read: 780, write: 0, timeout: 0 })
  t.equal(r.non2xx, 5463)
  t.equal(r.latencyMs.p50, 0.049)
})

t.test('times in every unit wrk prints', async (t) => {
  t.equal(wrk.wrkTimeMs('183.00us'), 0.183)
  t.equal(wrk.wrkTimeMs('1.15ms'), 1.15)
  t.equal(wrk.wrkTimeMs('2.00s'), 2000)
  t.equal(wrk.wrkTimeMs('1.50m'), 90_000)
  t.throws(() => wrk.wrkTimeMs('fast'), /wrk: not a time: "fast"/)
})

t.test('a run that could not connect, or a report without --latency, is an error naming what is missing', async (t) => {
  t.throws(() => wrk.parseWrk('unable to connect to 198.18.0.20:9090 Connection refused\n'), /wrk: no complete report \(unable to connect/)
  t.throws(() => wrk.parseWrk(''), /wrk: no complete report \(no output\)/)
  const noLatency = clean.replace(/ {2}Latency Distribution\n(?: {5}\d+%.*\n){4}/, '')
  t.throws(() => wrk.parseWrk(noLatency), /wrk: no 50% latency line/)
})

t.test('the argv: one thread, the connections and seconds asked, a 2 s timeout, the latency distribution', async (t) => {
  t.same(wrk.wrkArgv('http://198.18.0.20:9090/', 16, 5), [
    'wrk',
    '-t1',
    '-c16',
    '-d5s',
    '--timeout',
    '2s',
    '--latency',
    'http://198.18.0.20:9090/',
  ])
})
