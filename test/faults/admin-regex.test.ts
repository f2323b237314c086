// ?filter= from anyone who can reach 15090/15020 (every address, not captured) or 15000: a pattern that makes a
// backtracking engine run for ever must not stop the sidecar. Each is answered (400 or the right, empty
// result) and the health port still answers; patterns outside RE2, too long or too large get a 400 naming why.
import t, { type Test } from 'tap'
import { get, startLoopbackSidecar, type AdminPorts } from './admin-sidecar.js'

// The issue's ^cluster\.([\w.]+)+! aimed at the stats a fresh sidecar has: exponential for a backtracking
// engine on every listener.127.0.0.1_PORT.* name (about 2^37 ways to split it), linear for RE2.
const evil = encodeURIComponent('^listener\\.([\\w.]+)+!')

interface Case {
  name: string
  port: (p: AdminPorts) => number
  path: string
  /** what a correct answer to the evil filter looks like: nothing of the proxy's matches */
  check(t: Test, body: string): void
}

const cases: Case[] = [
  {
    name: '15090 /stats/prometheus',
    port: (p) => p.prometheus,
    path: '/stats/prometheus',
    check: (t, body) => t.equal(body, '', 'no series match'),
  },
  {
    name: '15020 merged /stats/prometheus',
    port: (p) => p.merged,
    path: '/stats/prometheus',
    check(t, body) {
      t.notMatch(body, /^(# TYPE )?envoy_/m, "none of the proxy's series match")
      t.match(body, /^istio_agent_scrapes_total 1$/m, "the agent's own lines follow")
    },
  },
  { name: '15000 /stats', port: (p) => p.admin, path: '/stats', check: (t, body) => t.equal(body, '', 'no stat matches') },
  {
    name: '15000 /stats?format=json',
    port: (p) => p.admin,
    path: '/stats?format=json',
    check: (t, body) => t.same(JSON.parse(body), { stats: [] }),
  },
  { name: '15000 /stats/prometheus', port: (p) => p.admin, path: '/stats/prometheus', check: (t, body) => t.equal(body, '') },
]

for (const c of cases) {
  const sep = c.path.includes('?') ? '&' : '?'
  t.test(`${c.name}${sep}filter=${decodeURIComponent(evil)}: answered, and health still answers`, async (t) => {
    const { ports } = await startLoopbackSidecar(t)
    const answer = get(c.port(ports), `${c.path}${sep}filter=${evil}`, 10_000)
    // Give the request time to reach the handler, then ask the health port (a liveness check, not a timing).
    await new Promise((r) => setTimeout(r, 500))
    const health = await get(ports.health, '/healthz/ready', 10_000)
    t.equal(health.status, 200, `15021 answers while/after the filter runs (${health.error ?? 'answered'})`)
    const r = await answer
    t.equal(r.status, 200, `the filter is answered (${r.error ?? r.status})`)
    if (r.status === 200) c.check(t, r.body)
  })
}

t.test('patterns RE2 cannot run, over-long and too large ones: 400 naming the problem, on every port', async (t) => {
  const { ports } = await startLoopbackSidecar(t)
  const bad: [string, RegExp][] = [
    ['(a)\\1', /^Invalid re2 regex: .*invalid escape sequence: `\\1`/],
    ['cluster(?=\\.)', /^Invalid re2 regex: .*invalid or unsupported Perl syntax: `\(\?=`/],
    ['(', /^Invalid re2 regex: .*missing closing \)/],
    ['a{1001}', /^Invalid re2 regex: .*invalid repeat count/],
    ['x'.repeat(1025), /^Invalid re2 regex: the pattern is 1025 characters long; at most 1024 are accepted/],
    ['.{0,1000}'.repeat(20), /^Invalid re2 regex: the pattern is too large/],
  ]
  const where: [string, number, string][] = [
    ['15090', ports.prometheus, '/stats/prometheus'],
    ['15020', ports.merged, '/stats/prometheus'],
    ['15000', ports.admin, '/stats'],
    ['15000', ports.admin, '/stats/prometheus'],
  ]
  for (const [pattern, message] of bad) {
    for (const [name, port, path] of where) {
      const r = await get(port, `${path}?filter=${encodeURIComponent(pattern)}`)
      t.equal(r.status, 400, `${name} ${path} ${pattern.slice(0, 30)}: 400`)
      t.match(r.body, message, `${name} ${path} ${pattern.slice(0, 30)}: names the problem`)
    }
  }
  t.equal((await get(ports.health, '/healthz/ready')).status, 200, 'the sidecar is still healthy')
  // RE2 syntax that JavaScript lacks is accepted: (?i) and \pN.
  const ok = await get(ports.admin, `/stats?filter=${encodeURIComponent('(?i)^LISTENER\\.[\\pN.]+_\\pN+\\.downstream_cx_total$')}`)
  t.equal(ok.status, 200)
  t.match(ok.body, /^listener\.127\.0\.0\.1_\d+\.downstream_cx_total: 0\nlistener\.127\.0\.0\.1_\d+\.downstream_cx_total: 0\n$/)
})
