// The shared value parsers: what each accepts, and the message naming flag and value when it refuses.
import t from 'tap'
import { address, bytes, duration, httpUrl, integer, oneOf, port, readAddress, readInteger, readPort } from '../../src/flags/values.js'

const invalid = (message: string | RegExp) => ({ code: 'SIDECAR_ERR_INVALID_FLAG', message })

t.test('port: 1-65535, the fallback when not given', async (t) => {
  t.equal(port('port', '9080', 1), 9080)
  t.equal(port('port', undefined, 9080), 9080)
  t.equal(port('port', '65535', 1), 65535)
  t.throws(() => port('port', '0', 1), invalid('--port: 0 is not a port (1-65535)'))
  t.throws(() => port('port', '70000', 1), invalid('--port: 70000 is not a port (1-65535)'))
  t.throws(() => port('port', '-1', 1), invalid('--port: -1 is not a port (1-65535)'))
  t.throws(() => port('port', 'http', 1), invalid('--port: "http" is not a port (1-65535)'))
})

t.test('integer: whole numbers within the range', async (t) => {
  t.equal(integer('n', '7', 1, 1, 10), 7)
  t.equal(integer('n', undefined, 3, 1, 10), 3)
  t.throws(() => integer('n', '11', 1, 1, 10), invalid('--n: 11 is out of range (1 to 10)'))
  t.throws(() => integer('n', '1.5', 1, 1, 10), invalid('--n: "1.5" is not a whole number'))
  t.throws(() => integer('n', '', 1, 1, 10), invalid('--n: "" is not a whole number'))
})

t.test('duration: ms, s, m, h, a bare number is seconds, 0 where allowed', async (t) => {
  t.equal(duration('d', '500ms', 1, false), 500)
  t.equal(duration('d', '10s', 1, false), 10_000)
  t.equal(duration('d', '1h', 1, false), 3_600_000)
  t.equal(duration('d', '2', 1, false), 2000)
  t.equal(duration('d', '0', 1, true), 0)
  t.equal(duration('d', undefined, 42, true), 42)
  t.throws(() => duration('d', '0', 1, false), invalid('--d: must be more than 0'))
  t.throws(() => duration('d', '-5', 1, true), invalid('--d: -5 is negative (0 or more: 500ms, 10s, 5m, 1h)'))
  t.throws(() => duration('d', 'soon', 1, true), invalid('--d: "soon" is not a duration (500ms, 10s, 5m, 1h)'))
  t.throws(() => duration('d', '30d', 1, true), invalid(/"30d" is not a duration/))
  t.throws(() => duration('d', '1000h', 1, true), invalid('--d: "1000h" is too long (at most about 24 days)'))
})

t.test('bytes: 1Ki to 1Gi', async (t) => {
  t.equal(bytes('b', '1Mi', 1), 1024 ** 2)
  t.equal(bytes('b', '65536', 1), 65536)
  t.throws(() => bytes('b', '10', 1), invalid('--b: 10 bytes is out of range (1Ki to 1Gi)'))
  t.throws(() => bytes('b', '-1Mi', 1), invalid('--b: -1Mi is negative (1Ki to 1Gi: 65536, 64Ki, 1Mi)'))
  t.throws(() => bytes('b', '1MB', 1), invalid('--b: "1MB" is not a size (65536, 64Ki, 1Mi)'))
})

t.test('address: v4 or v6, or one family', async (t) => {
  t.equal(address('a', '198.18.0.1'), '198.18.0.1')
  t.equal(address('a', '2001:2::1', 6), '2001:2::1')
  t.throws(() => address('a', '1.2.3'), invalid('--a: "1.2.3" is not an IP address'))
  t.throws(() => address('a', '::6', 4), invalid('--a: "::6" is not an IPv4 address'))
  t.throws(() => address('a', '127.0.0.6', 6), invalid('--a: "127.0.0.6" is not an IPv6 address'))
})

t.test('oneOf and httpUrl', async (t) => {
  t.equal(oneOf('mode', 'TPROXY', ['REDIRECT', 'TPROXY']), 'TPROXY')
  t.throws(() => oneOf('mode', 'tproxy', ['REDIRECT', 'TPROXY']), invalid('--mode: "tproxy" is not one of REDIRECT, TPROXY'))
  t.equal(httpUrl('u', 'http://127.0.0.1:9090/metrics'), 'http://127.0.0.1:9090/metrics')
  t.equal(httpUrl('u', undefined), null)
  t.throws(() => httpUrl('u', 'https://x/'), invalid('--u: "https://x/" must be an http:// URL'))
})

t.test('a value full of terminal escapes is shown escaped, never raw', async (t) => {
  const evil = 'x\u001b[2J\u009b31m'
  for (const f of [
    () => port('p', evil, 1),
    () => integer('n', evil, 1, 0, 9),
    () => duration('d', evil, 1, true),
    () => bytes('b', evil, 1),
    () => address('a', evil),
    () => oneOf('o', evil, ['a']),
  ]) {
    let message = ''
    try {
      f()
    } catch (err) {
      message = (err as Error).message
    }
    t.match(message, '\\u001b[2J\\u009b31m')
    // eslint-disable-next-line no-control-regex -- the test looks for exactly these characters
    t.notMatch(message, /[\u0000-\u001f\u007f-\u009f]/)
  }
})

t.test('the readers iptables uses answer a value or undefined', async (t) => {
  t.same(['1', '65535', '0', '65536', '-1', ' 80', '123456'].map(readPort), [
    1,
    65535,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ])
  t.same([readInteger('0', 0, 9), readInteger('10', 0, 9), readInteger('x', 0, 9)], [0, undefined, undefined])
  t.same([readAddress('198.18.0.1'), readAddress('2001:2::1', 4), readAddress('nope')], ['198.18.0.1', undefined, undefined])
})
