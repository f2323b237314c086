import t from 'tap'
import { defaultProxyConfig } from '../../src/proxy/config.js'
import { parseProxyFlags, proxyHelp, proxyFlags } from '../../src/proxy/flags.js'

t.test('no flags give Istio\'s defaults', async (t) => {
  // dns: its upstreams and search list come from this machine's /etc/resolv.conf (test/dns/flags.test.ts)
  t.same({ ...(parseProxyFlags([]) as object), dns: null }, { ...defaultProxyConfig, dns: null })
  const c = parseProxyFlags([])
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.outboundPort, 15001)
  t.equal(c.inboundPort, 15006)
  t.equal(c.connectTimeoutMs, 10_000)
  t.equal(c.idleTimeoutMs, 3_600_000)
  t.equal(c.bufferLimitBytes, 1024 * 1024)
  t.equal(c.drainMs, 5_000)
  t.equal(c.uid, 1337)
})

t.test('flags reach the config', async (t) => {
  const c = parseProxyFlags([
    '--outbound-port', '16001', '--inbound-port', '16006', '--connect-timeout', '250ms', '--idle-timeout', '0',
    '--buffer-limit', '64Ki', '--drain-duration', '2m', '--exit-on-zero-active', '--access-log', 'off',
    '--access-log-format', 'json', '--outbound-traffic-policy', 'REGISTRY_ONLY', '--registry', 'reviews=198.18.0.2:9080,198.19.0.0/16',
  ])
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.outboundPort, 16001)
  t.equal(c.inboundPort, 16006)
  t.equal(c.connectTimeoutMs, 250)
  t.equal(c.idleTimeoutMs, 0)
  t.equal(c.bufferLimitBytes, 65536)
  t.equal(c.drainMs, 120_000)
  t.equal(c.exitOnZeroActive, true)
  t.equal(c.accessLog, null)
  t.equal(c.accessLogFormat, 'json')
  t.equal(c.outboundTrafficPolicy, 'REGISTRY_ONLY')
  t.same(c.registry.map((e) => [e.name, e.address, e.prefix, e.port]), [
    ['reviews', '198.18.0.2', 32, 9080],
    ['198.19.0.0/16', '198.19.0.0', 16, 0],
  ])
})

t.test('Istio\'s environment variables set the drain', async (t) => {
  const c = parseProxyFlags([], { TERMINATION_DRAIN_DURATION_SECONDS: '7', EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' })
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.drainMs, 7000)
  t.equal(c.exitOnZeroActive, true)
})

t.test('bad values are refused with a message naming the flag and the value', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--outbound-port', '0'], /--outbound-port: 0 is out of range/],
    [['--inbound-port', '65536'], /--inbound-port: 65536 is out of range/],
    [['--outbound-port', 'http'], /--outbound-port: 'http' is not a whole number/],
    [['--bind', '1.2.3'], /--bind: '1.2.3' is not an IP address/],
    [['--inbound-source', '::6'], /--inbound-source: '::6' is not an IPv4 address/],
    [['--connect-timeout', '0'], /--connect-timeout: must be more than 0/],
    [['--connect-timeout', 'soon'], /--connect-timeout: 'soon' is not a duration/],
    [['--buffer-limit', '10'], /--buffer-limit: 10 bytes is out of range/],
    [['--buffer-limit', '1MB'], /--buffer-limit: '1MB' is not a size/],
    [['--outbound-traffic-policy', 'DENY'], /'DENY' is not one of ALLOW_ANY, REGISTRY_ONLY/],
    [['--access-log-format', 'xml'], /'xml' is not one of text, json/],
    [['--registry', 'reviews=not-an-ip:80'], /--registry: 'reviews=not-an-ip:80' has no valid IP address/],
    [['--registry', '198.18.0.0/33'], /bad prefix length \/33/],
    [['--registry', '198.18.0.1:70000'], /port 70000 out of range/],
    [['--registry-file', '/nonexistent/registry.txt'], /--registry-file: cannot read '\/nonexistent\/registry.txt'/],
  ]
  for (const [argv, message] of cases) {
    t.throws(() => parseProxyFlags(argv), { code: 'SIDECAR_ERR_INVALID_FLAG', message }, argv.join(' '))
  }
})

t.test('unknown flags and missing values are named', async (t) => {
  t.throws(() => parseProxyFlags(['--outbund-port', '1']), { code: 'SIDECAR_ERR_UNKNOWN_FLAG', message: /unknown flag --outbund-port/ })
  t.throws(() => parseProxyFlags(['stray']), { code: 'SIDECAR_ERR_UNKNOWN_FLAG' })
  t.throws(() => parseProxyFlags(['--uid']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /--uid/ })
})

t.test('--help describes every flag', async (t) => {
  t.equal(parseProxyFlags(['--help']), 'help')
  const help = proxyHelp()
  for (const f of proxyFlags) t.match(help, `--${f.name}`, `help lists --${f.name}`)
})

t.test('observability ports default to Istio\'s and 0 disables each', async (t) => {
  const d = parseProxyFlags([])
  if (d === 'help') throw new Error('unexpected help')
  t.same([d.adminPort, d.healthPort, d.prometheusPort, d.mergedMetricsPort, d.appMetricsUrl], [15000, 15021, 15090, 15020, null])
  const c = parseProxyFlags(['--admin-port', '0', '--health-port', '16021', '--prometheus-port', '0', '--merged-metrics-port', '16020'])
  if (c === 'help') throw new Error('unexpected help')
  t.same([c.adminPort, c.healthPort, c.prometheusPort, c.mergedMetricsPort], [0, 16021, 0, 16020])
})

t.test('--admin-port, --health-port, --prometheus-port and --merged-metrics-port refuse bad ports', async (t) => {
  for (const flag of ['admin-port', 'health-port', 'prometheus-port', 'merged-metrics-port']) {
    t.throws(() => parseProxyFlags([`--${flag}`, '65536']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: `--${flag}: 65536 is out of range (0 to 65535)` })
    t.throws(() => parseProxyFlags([`--${flag}`, 'admin']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: `--${flag}: 'admin' is not a whole number` })
  }
})

t.test('--app-metrics-url takes an http URL and refuses anything else', async (t) => {
  const c = parseProxyFlags(['--app-metrics-url', 'http://127.0.0.1:9090/metrics'])
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.appMetricsUrl, 'http://127.0.0.1:9090/metrics')
  t.throws(() => parseProxyFlags(['--app-metrics-url', '127.0.0.1:9090']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /--app-metrics-url: '127.0.0.1:9090' (is not a URL|must be an http)/ })
  t.throws(() => parseProxyFlags(['--app-metrics-url', 'https://127.0.0.1/metrics']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /must be an http:\/\/ URL/ })
  t.throws(() => parseProxyFlags(['--app-metrics-url', 'not a url']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /is not a URL/ })
})
