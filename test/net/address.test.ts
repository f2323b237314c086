// The one address module: Envoy's host:port form with IPv6 in brackets, a strict parse that names what is
// wrong, and IPv4-mapped addresses made plain so one peer has one spelling.
import t from 'tap'
import {
  addressFamily,
  endpoint,
  endpointKey,
  formatEndpoint,
  formatHostPort,
  parseEndpoint,
  parseOptionalEndpoint,
  plainAddress,
  sameEndpoint,
} from '../../src/net/address.js'

t.test('format: IPv4 plain, IPv6 in brackets, none as -', async (t) => {
  t.equal(formatEndpoint({ address: '198.18.0.10', port: 9080, family: 4 }), '198.18.0.10:9080')
  t.equal(formatEndpoint({ address: '2001:2::20', port: 15006, family: 6 }), '[2001:2::20]:15006')
  t.equal(formatEndpoint(undefined), '-')
  t.equal(formatEndpoint(null), '-')
  t.equal(formatHostPort('::', 15001), '[::]:15001')
  t.equal(formatHostPort('0.0.0.0', 15001), '0.0.0.0:15001')
})

t.test('parse and format round trip', async (t) => {
  for (const text of ['198.18.0.10:35784', '127.0.0.1:0', '0.0.0.0:65535', '[2001:2::10]:9080', '[::1]:15001', '[::]:1', '[fe80::1]:22']) {
    t.equal(formatEndpoint(parseEndpoint(text)), text, text)
  }
  t.same(parseEndpoint('[2001:2::10]:9080'), { address: '2001:2::10', port: 9080, family: 6 })
  t.same(parseEndpoint('198.18.0.10:80'), { address: '198.18.0.10', port: 80, family: 4 })
})

t.test('IPv4-mapped IPv6 is made plain IPv4, wherever it comes from', async (t) => {
  t.equal(plainAddress('::ffff:198.18.0.10'), '198.18.0.10')
  t.equal(plainAddress('::FFFF:198.18.0.10'), '198.18.0.10')
  t.equal(plainAddress('::ffff:1:2'), '::ffff:1:2', 'not a dotted IPv4 tail: left alone')
  t.equal(plainAddress('2001:2::10'), '2001:2::10')
  t.same(parseEndpoint('[::ffff:198.18.0.10]:9080'), { address: '198.18.0.10', port: 9080, family: 4 })
  t.same(endpoint('::ffff:127.0.0.6', 43585), { address: '127.0.0.6', port: 43585, family: 4 })
  t.same(endpoint('::1', 1), { address: '::1', port: 1, family: 6 })
  t.equal(endpoint(undefined, 1), undefined, 'a closed socket has no address')
  t.equal(endpoint('1.2.3.4', undefined), undefined)
  t.equal(endpointKey('::ffff:1.2.3.4', 5), endpointKey('1.2.3.4', 5))
  t.ok(sameEndpoint(parseEndpoint('[::ffff:1.2.3.4]:5'), parseEndpoint('1.2.3.4:5')))
  t.notOk(sameEndpoint(parseEndpoint('1.2.3.4:5'), parseEndpoint('1.2.3.4:6')))
  t.notOk(sameEndpoint(null, parseEndpoint('1.2.3.4:6')))
})

t.test('parse is strict: bad input throws InvalidAddressError naming the problem', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /no ':port'/],
    ['198.18.0.10', /no ':port'/],
    ['2001:2::20:9080', /IPv6 address needs brackets/],
    ['[2001:2::20:9080', /'\[' without '\]'/],
    ['[2001:2::20]9080', /no ':port' after '\]'/],
    ['[198.18.0.10]:80', /'198\.18\.0\.10' in brackets is not an IPv6 address/],
    ['host.example:80', /'host\.example' is not an IP address/],
    ['198.18.0.256:80', /is not an IP address/],
    ['198.18.0.10:', /'' is not a port/],
    ['198.18.0.10:65536', /'65536' is not a port/],
    ['198.18.0.10:-1', /'-1' is not a port/],
    ['198.18.0.10:8o', /'8o' is not a port/],
    ['198.18.0.10:080080', /is not a port/],
    [' 198.18.0.10:80', /is not an IP address/],
  ]
  for (const [text, reason] of bad) {
    t.throws(
      () => parseEndpoint(text),
      { name: 'InvalidAddressError', code: 'SIDECAR_ERR_INVALID_ADDRESS', message: reason },
      JSON.stringify(text),
    )
  }
  t.throws(
    () => parseEndpoint('x:1'),
    { message: "'x:1' is not an address:port: 'x' is not an IP address" },
    'the message quotes the input',
  )
  t.equal(parseOptionalEndpoint('-'), null, "Envoy's '-' is no address")
  t.throws(() => parseOptionalEndpoint('--'), { code: 'SIDECAR_ERR_INVALID_ADDRESS' })
})

t.test('family: IPv6 unless IPv4 or IPv4-mapped (which socket options the addon uses)', async (t) => {
  t.same(['198.18.0.1', '::ffff:198.18.0.1', '2001:2::1', '::1', undefined].map(addressFamily), [4, 4, 6, 6, 4])
})
