import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { defaultProxyConfig } from '../../src/proxy/config.js'
import { identityWarning } from '../../src/proxy/command.js'
import { parseProxyArgs, parseProxyFlags, proxyHelp, proxyFlags } from '../../src/proxy/flags.js'

t.test("no flags give Istio's defaults", async (t) => {
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
    '--outbound-port',
    '16001',
    '--inbound-port',
    '16006',
    '--connect-timeout',
    '250ms',
    '--idle-timeout',
    '0',
    '--buffer-limit',
    '64Ki',
    '--drain-duration',
    '2m',
    '--exit-on-zero-active',
    '--access-log',
    'off',
    '--access-log-format',
    'json',
    '--outbound-traffic-policy',
    'REGISTRY_ONLY',
    '--relay',
    'native',
    '--registry',
    'reviews=198.18.0.2:9080,198.19.0.0/16',
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
  t.equal(c.relay, 'native')
  t.same(
    c.registry.map((e) => [e.name, e.address, e.prefix, e.port]),
    [
      ['reviews', '198.18.0.2', 32, 9080],
      ['198.19.0.0/16', '198.19.0.0', 16, 0],
    ],
  )
})

t.test("Istio's environment variables set the drain", async (t) => {
  const c = parseProxyFlags([], { TERMINATION_DRAIN_DURATION_SECONDS: '7', EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' })
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.drainMs, 7000)
  t.equal(c.exitOnZeroActive, true)
})

t.test('bad values are refused with a message naming the flag and the value', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--outbound-port', '0'], /--outbound-port: 0 is not a port \(1-65535\)/],
    [['--inbound-port', '65536'], /--inbound-port: 65536 is not a port \(1-65535\)/],
    [['--outbound-port', 'http'], /--outbound-port: "http" is not a port \(1-65535\)/],
    [['--bind', '1.2.3'], /--bind: "1.2.3" is not an IP address/],
    [['--inbound-source', '::6'], /--inbound-source: "::6" is not an IPv4 address/],
    [['--connect-timeout', '0'], /--connect-timeout: must be more than 0/],
    [['--connect-timeout', 'soon'], /--connect-timeout: "soon" is not a duration/],
    [['--buffer-limit', '10'], /--buffer-limit: 10 bytes is out of range/],
    [['--buffer-limit', '1MB'], /--buffer-limit: "1MB" is not a size/],
    [['--outbound-traffic-policy', 'DENY'], /"DENY" is not one of ALLOW_ANY, REGISTRY_ONLY/],
    [['--access-log-format', 'xml'], /"xml" is not one of text, json/],
    [['--relay', 'splice'], /--relay: "splice" is not one of node, native/],
    [['--registry', 'reviews=not-an-ip:80'], /--registry: "reviews=not-an-ip:80" has no valid IP address/],
    [['--registry', '198.18.0.0/33'], /bad prefix length \/33/],
    [['--registry', '198.18.0.1:70000'], /port 70000 out of range/],
    [
      ['--registry-file', '/nonexistent/registry.txt'],
      /--registry-file: cannot read "\/nonexistent\/registry.txt": ENOENT: no such file or directory$/,
    ],
  ]
  for (const [argv, message] of cases) {
    t.throws(() => parseProxyFlags(argv), { code: 'SIDECAR_ERR_INVALID_FLAG', message }, argv.join(' '))
  }
})

t.test('unknown flags and missing values are named', async (t) => {
  t.throws(() => parseProxyFlags(['--outbund-port', '1']), { code: 'SIDECAR_ERR_UNKNOWN_FLAG', message: /unknown flag --outbund-port/ })
  t.throws(() => parseProxyFlags(['stray']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /^unexpected argument "stray": 'sidecar-lab proxy' takes only flags/,
  })
  t.throws(() => parseProxyFlags(['--uid']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: '--uid: give a value (--uid UID)' })
  t.throws(() => parseProxyFlags(['--uid', '--bind', '::']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: '--uid: give a value (--uid UID)',
  })
  t.throws(() => parseProxyFlags(['--exit-on-zero-active=yes']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /^--exit-on-zero-active takes no value/,
  })
})

t.test('--help describes every flag', async (t) => {
  t.equal(parseProxyFlags(['--help']), 'help')
  const help = proxyHelp()
  for (const f of proxyFlags) t.match(help, `--${f.name}`, `help lists --${f.name}`)
  for (const line of help.split('\n')) t.ok((line.match(/\(default/g) ?? []).length <= 1, `one default a line: ${line}`)
  // (the help is wrapped: read it with its line breaks as spaces)
  t.match(
    help.replace(/\s+/g, ' '),
    /--dns-upstream LIST +where unknown names go, ADDRESS\[:PORT\],\.\.\. \(default the --dns-resolv-conf file's nameservers\) --dns-resolv-conf/,
  )
})

t.test("observability ports default to Istio's and 0 disables each", async (t) => {
  const d = parseProxyFlags([])
  if (d === 'help') throw new Error('unexpected help')
  t.same([d.adminPort, d.healthPort, d.prometheusPort, d.mergedMetricsPort, d.appMetricsUrl], [15000, 15021, 15090, 15020, null])
  const c = parseProxyFlags(['--admin-port', '0', '--health-port', '16021', '--prometheus-port', '0', '--merged-metrics-port', '16020'])
  if (c === 'help') throw new Error('unexpected help')
  t.same([c.adminPort, c.healthPort, c.prometheusPort, c.mergedMetricsPort], [0, 16021, 0, 16020])
})

t.test('--admin-port, --health-port, --prometheus-port and --merged-metrics-port refuse bad ports', async (t) => {
  for (const flag of ['admin-port', 'health-port', 'prometheus-port', 'merged-metrics-port']) {
    t.throws(() => parseProxyFlags([`--${flag}`, '65536']), {
      code: 'SIDECAR_ERR_INVALID_FLAG',
      message: `--${flag}: 65536 is out of range (0 to 65535)`,
    })
    t.throws(() => parseProxyFlags([`--${flag}`, 'admin']), {
      code: 'SIDECAR_ERR_INVALID_FLAG',
      message: `--${flag}: "admin" is not a whole number`,
    })
  }
})

t.test('--app-metrics-url takes an http URL and refuses anything else', async (t) => {
  const c = parseProxyFlags(['--app-metrics-url', 'http://127.0.0.1:9090/metrics'])
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.appMetricsUrl, 'http://127.0.0.1:9090/metrics')
  t.throws(() => parseProxyFlags(['--app-metrics-url', '127.0.0.1:9090']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /--app-metrics-url: "127.0.0.1:9090" (is not a URL|must be an http)/,
  })
  t.throws(() => parseProxyFlags(['--app-metrics-url', 'https://127.0.0.1/metrics']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /must be an http:\/\/ URL/,
  })
  t.throws(() => parseProxyFlags(['--app-metrics-url', 'not a url']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /is not a URL/ })
})

t.test('negative numbers get the value\'s own message, not parseArgs\' "ambiguous"', async (t) => {
  const cases: [string[], string][] = [
    [['--outbound-port', '-1'], '--outbound-port: -1 is not a port (1-65535)'],
    [['--inbound-port', '-15006'], '--inbound-port: -15006 is not a port (1-65535)'],
    [['--admin-port', '-1'], '--admin-port: -1 is out of range (0 to 65535)'],
    [['--max-connections', '-3'], '--max-connections: -3 is out of range (1 to 10000000)'],
    [['--uid', '-1'], '--uid: -1 is out of range (0 to 4294967294)'],
    [['--idle-timeout', '-5'], '--idle-timeout: -5 is negative (0 or more: 500ms, 10s, 5m, 1h)'],
    [['--connect-timeout', '-1s'], '--connect-timeout: -1s is negative (more than 0: 500ms, 10s, 5m, 1h)'],
    [['--buffer-limit', '-1Mi'], '--buffer-limit: -1Mi is negative (1Ki to 1Gi: 65536, 64Ki, 1Mi)'],
  ]
  for (const [argv, message] of cases) {
    t.throws(() => parseProxyFlags(argv), { code: 'SIDECAR_ERR_INVALID_FLAG', message }, argv.join(' '))
  }
  t.throws(() => parseProxyFlags(['--outbound-port=-1']), { message: '--outbound-port: -1 is not a port (1-65535)' }, 'the = form too')
  const c = parseProxyFlags(['--access-log', '-', '--idle-timeout', '5'])
  if (c === 'help') throw new Error('unexpected help')
  t.same([c.accessLog, c.idleTimeoutMs], ['-', 5000], "'-' (stdout) is still a value")
})

t.test('two listeners on one port are refused at parse time, naming both flags', async (t) => {
  const cases: [string[], string][] = [
    [['--outbound-port', '15006'], '--outbound-port and --inbound-port are both 15006: each needs a port of its own'],
    [['--inbound-port', '15001'], '--outbound-port and --inbound-port are both 15001: each needs a port of its own'],
    [['--outbound-port', '15000'], '--outbound-port and --admin-port are both 15000: each needs a port of its own'],
    [['--inbound-port', '15021'], '--inbound-port and --health-port are both 15021: each needs a port of its own'],
    [['--prometheus-port', '15001'], '--outbound-port and --prometheus-port are both 15001: each needs a port of its own'],
    [['--merged-metrics-port', '15006'], '--inbound-port and --merged-metrics-port are both 15006: each needs a port of its own'],
    [['--health-port', '15090'], '--health-port and --prometheus-port are both 15090: each needs a port of its own'],
  ]
  for (const [argv, message] of cases) {
    t.throws(() => parseProxyFlags(argv), { code: 'SIDECAR_ERR_INVALID_FLAG', message }, argv.join(' '))
  }
  const c = parseProxyFlags(['--outbound-port', '15000', '--admin-port', '0', '--health-port', '0', '--prometheus-port', '0'])
  if (c === 'help') throw new Error('unexpected help')
  t.equal(c.outboundPort, 15000, 'a disabled port (0) takes no port')
})

t.test('a registry file of garbage is refused with the line quoted, escaped and cut short', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'registry.txt')
  const garbage = 'db=\x1b[2J\x1b]0;owned\x07\x00\x9b31m' + 'x'.repeat(500)
  writeFileSync(file, `reviews=198.18.0.2:9080\n# a comment\n${garbage}\n`)
  let message = ''
  t.throws(
    () => {
      try {
        parseProxyFlags(['--registry-file', file])
      } catch (err) {
        message = (err as Error).message
        throw err
      }
    },
    { code: 'SIDECAR_ERR_INVALID_FLAG' },
  )
  t.match(message, `--registry-file ${JSON.stringify(file)} line 3: "db=\\u001b[2J\\u001b]0;owned\\u0007\\u0000\\u009b31mxxx`)
  t.match(message, `xxx"… (${garbage.length} characters) has no valid IP address`)
  // eslint-disable-next-line no-control-regex -- the test looks for exactly these characters
  t.notMatch(message, /[\u0000-\u001f\u007f-\u009f]/, 'no control character reaches the terminal')
  // the fixture's path is part of the message and as long as the checkout's path makes it: not counted
  t.ok(
    message.length - file.length < 300,
    `short (${message.length - file.length} characters besides the path, for a line of ${garbage.length})`,
  )
})

t.test('--uid and --gid given to a proxy not started as root are named in one warning line', async (t) => {
  const parsed = parseProxyArgs(['--uid', '1337', '--gid', '1338'])
  if (parsed === 'help') throw new Error('unexpected help')
  t.same([...parsed.given].sort(), ['gid', 'uid'])
  t.equal(
    identityWarning(parsed.config, parsed.given, 1000, 1000),
    '--uid 1337 and --gid 1338 are ignored: not started as root, the proxy runs as uid 1000, gid 1000',
  )
  t.equal(
    identityWarning(parsed.config, new Set(['uid']), 1000, 1000),
    '--uid 1337 is ignored: not started as root, the proxy runs as uid 1000, gid 1000',
  )
  t.equal(identityWarning(parsed.config, parsed.given, 0, 0), null, 'as root they take effect')
  t.equal(identityWarning(parsed.config, parsed.given, 1337, 1338), null, 'already that identity')
  const defaults = parseProxyArgs([])
  if (defaults === 'help') throw new Error('unexpected help')
  t.equal(identityWarning(defaults.config, defaults.given, 1000, 1000), null, 'the default 1337 is no reason to warn')
})

t.test('--help stays under 100 columns and lists --log-format', async (t) => {
  const help = proxyHelp()
  t.same(
    help.split('\n').filter((l) => l.length >= 100),
    [],
  )
  t.match(help, '--log-format FORMAT')
  const parsed = parseProxyArgs(['--log-format', 'text'])
  t.equal(parsed !== 'help' && parsed.logFormat, 'text')
})
