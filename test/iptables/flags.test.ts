// istio-iptables' flags: defaults, environment variables, forms of a flag, and the errors for bad values.
import t from 'tap'
import type { Test } from 'tap'
import { InvalidFlagError, UnknownFlagError } from '../../src/errors.js'
import { ruleConfig } from '../../src/iptables/config.js'
import { flagSpecs, helpText, parseFlags } from '../../src/iptables/flags.js'

const parse = (argv: string[], env: Record<string, string> = {}) => parseFlags(argv, { env })

function rejects(t: Test, argv: string[], message: string, env: Record<string, string> = {}) {
  t.throws(() => parse(argv, env), new InvalidFlagError(message), argv.join(' '))
}

t.test('no flags give the reference defaults', async (t) => {
  const { rules, run } = parse([])
  t.same(rules, ruleConfig())
  t.same(run, {
    dryRun: false,
    nativeNftables: false,
    compat: 'current',
    explain: false,
    cleanupOnly: false,
    reconcile: false,
    forceApply: false,
    networkNamespace: '',
    help: false,
  })
})

t.test('-u defaults to the uid of $ENVOY_USER and -g follows -u', async (t) => {
  const lookupUid = (user: string) => (user === 'istio-proxy' ? 101 : undefined)
  const known = parseFlags([], { env: { ENVOY_USER: 'istio-proxy' }, lookupUid })
  t.equal(known.rules.proxyUID, '101')
  t.equal(known.rules.proxyGID, '101')
  t.equal(parseFlags([], { env: { ENVOY_USER: 'nobody-here' }, lookupUid }).rules.proxyUID, '1337')
  t.equal(parse(['-u', '3,4']).rules.proxyGID, '3,4')
  t.equal(parse(['-u', '3', '-g', '5']).rules.proxyGID, '5')
})

t.test('long, short, = and glued forms set the same value', async (t) => {
  for (const argv of [['--envoy-port', '16001'], ['--envoy-port=16001'], ['-p', '16001'], ['-p=16001'], ['-p16001']]) {
    t.equal(parse(argv).rules.proxyPort, 16001, argv.join(' '))
  }
  t.equal(parse(['-n']).run.dryRun, true)
  t.equal(parse(['--dry-run=false']).run.dryRun, false)
  t.equal(parse(['-b', '*', '-i', '*', '-x', '']).rules.outboundIPRangesExclude, '')
})

t.test('every reference flag reads its environment variable; the flag wins', async (t) => {
  const env = {
    ENVOY_PORT: '16001',
    INBOUND_CAPTURE_PORT: '16006',
    ISTIO_INBOUND_PORTS: '*',
    ISTIO_SERVICE_CIDR: '10.0.0.0/8',
    ISTIO_INBOUND_TPROXY_MARK: '7',
    DUAL_STACK: 'true',
    NATIVE_NFTABLES: '1',
    NETWORK_NAMESPACE: 'pod1',
  }
  const { rules, run } = parse([], env)
  t.equal(rules.proxyPort, 16001)
  t.equal(rules.inboundCapturePort, 16006)
  t.equal(rules.inboundPortsInclude, '*')
  t.equal(rules.outboundIPRangesInclude, '10.0.0.0/8')
  t.equal(rules.inboundTProxyMark, 7)
  t.equal(rules.enableIPv6, true)
  t.equal(run.nativeNftables, true)
  t.equal(run.networkNamespace, 'pod1')
  t.equal(parse(['-p', '17001'], env).rules.proxyPort, 17001)
  for (const f of flagSpecs.filter((x) => x.env.length > 0)) {
    t.equal(f.env[0], f.long.toUpperCase().replaceAll('-', '_'), f.long)
  }
})

t.test('ISTIO_META_DNS_CAPTURE turns on --redirect-dns', async (t) => {
  t.equal(parse([], { ISTIO_META_DNS_CAPTURE: 'true' }).rules.redirectDNS, true)
  t.equal(parse([]).rules.redirectDNS, false)
})

t.test('environment-only settings', async (t) => {
  const { rules } = parse([], {
    ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202',
    ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888',
    ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8',
  })
  t.equal(rules.ownerGroupsInclude, 'java,202')
  t.equal(rules.ownerGroupsExclude, '888')
  t.equal(rules.hostIPv4LoopbackCidr, '127.0.0.1/8')
  rejects(t, [], 'invalid value "::1/128" for ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: not an IPv4 CIDR', {
    ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '::1/128',
  })
})

t.test('--dns-servers splits IPv4 from IPv6', async (t) => {
  const { rules } = parse(['--dns-servers', '127.0.0.53,::127.0.0.53,10.96.0.10'])
  t.same(rules.dnsServersV4, ['127.0.0.53', '10.96.0.10'])
  t.same(rules.dnsServersV6, ['::127.0.0.53'])
  rejects(t, ['--dns-servers', '10.0.0.300'], 'invalid value "10.0.0.300" for --dns-servers: "10.0.0.300" is not an IP address')
})

t.test('bad ports name the flag and the value', async (t) => {
  const why = 'not a port number (1-65535)'
  rejects(t, ['-p', 'http'], `invalid value "http" for --envoy-port (-p): ${why}`)
  rejects(t, ['-z', '0'], `invalid value "0" for --inbound-capture-port (-z): ${why}`)
  rejects(t, ['--inbound-tunnel-port', '65536'], `invalid value "65536" for --inbound-tunnel-port (-e): ${why}`)
  rejects(t, ['-b', '80,0'], `invalid value "80,0" for --istio-inbound-ports (-b): "0" is ${why}`)
  rejects(t, ['-q', '-1'], `invalid value "-1" for --istio-outbound-ports (-q): "-1" is ${why}`)
  rejects(
    t,
    ['-d', '*'],
    `invalid value "*" for --istio-local-exclude-ports (-d): '*' must stand alone, and is allowed only for --istio-inbound-ports`,
  )
  rejects(t, [], `invalid value "99999" for ENVOY_PORT (--envoy-port): ${why}`, { ENVOY_PORT: '99999' })
})

t.test('bad CIDRs, IPv4 and IPv6', async (t) => {
  const bad = (v: string, entry = v) =>
    `invalid value "${v}" for --istio-service-cidr (-i): "${entry}" is not an IPv4 or IPv6 CIDR (address/prefix, e.g. 10.0.0.0/8 or fd00::/8)`
  rejects(t, ['-i', '10.0.0.0/33'], bad('10.0.0.0/33'))
  rejects(t, ['-i', '300.1.1.0/24'], bad('300.1.1.0/24'))
  rejects(t, ['-i', '10.0.0.0/8,10.1.0.0'], bad('10.0.0.0/8,10.1.0.0', '10.1.0.0'))
  rejects(t, ['-i', '2001:db8::/129'], bad('2001:db8::/129'))
  rejects(t, ['-i', '2001:zz8::/32'], bad('2001:zz8::/32'))
  t.equal(parse(['-i', '10.0.0.0/8,2001:db8::/32']).rules.outboundIPRangesInclude, '10.0.0.0/8,2001:db8::/32')
})

t.test("-x '*' is refused", async (t) => {
  rejects(
    t,
    ['-x', '*'],
    `invalid value "*" for --istio-service-exclude-cidr (-x): '*' would exclude every destination; istio-iptables refuses it too`,
  )
})

t.test('bad interface names', async (t) => {
  rejects(
    t,
    ['-c', 'a-very-long-nic-name'],
    'invalid value "a-very-long-nic-name" for --istio-exclude-interfaces (-c): interface "a-very-long-nic-name" longer than 15 bytes (IFNAMSIZ)',
  )
  rejects(
    t,
    ['-k', 'eth0,veth/1'],
    `invalid value "eth0,veth/1" for --kube-virt-interfaces (-k): interface "veth/1" contains '/', ':' or whitespace`,
  )
  rejects(
    t,
    ['-c', 'eth0:1'],
    `invalid value "eth0:1" for --istio-exclude-interfaces (-c): interface "eth0:1" contains '/', ':' or whitespace`,
  )
  rejects(
    t,
    ['-c', 'my nic'],
    `invalid value "my nic" for --istio-exclude-interfaces (-c): interface "my nic" contains '/', ':' or whitespace`,
  )
  rejects(t, ['-c', '..'], `invalid value ".." for --istio-exclude-interfaces (-c): interface ".." '.' and '..' are not interface names`)
  t.equal(parse(['-c', 'eth0,not-istio-nic']).rules.excludeInterfaces, 'eth0,not-istio-nic')
})

t.test('unknown flags, missing values, bad booleans and stray arguments', async (t) => {
  t.throws(() => parse(['--no-such-flag']), new UnknownFlagError('--no-such-flag', 'sidecar-lab iptables'))
  t.throws(() => parse(['-Z']), {
    code: 'SIDECAR_ERR_UNKNOWN_FLAG',
    message: "unknown flag -Z for 'sidecar-lab iptables' (see 'sidecar-lab iptables --help')",
  })
  rejects(t, ['-n', '-p'], 'flag --envoy-port (-p) needs a value')
  rejects(t, ['--network-namespace'], 'flag --network-namespace needs a value')
  rejects(t, ['--dry-run=maybe'], 'invalid value "maybe" for --dry-run (-n): not a boolean (true or false)')
  rejects(t, ['--compat', 'old'], `invalid value "old" for --compat: expected 'legacy' or 'current'`)
  rejects(t, ['-u', 'root user'], 'invalid value "root user" for --proxy-uid (-u): "root user" is neither a number nor a name')
  rejects(t, ['15001'], `unexpected argument "15001" (flags start with - or --; see 'sidecar-lab iptables --help')`)
})

t.test('--help lists every flag with its default, variable and meaning', async (t) => {
  const help = helpText()
  for (const f of flagSpecs) {
    t.match(help, `--${f.long}`)
    if (f.short) t.match(help, `-${f.short}, --${f.long}`)
    // a long meaning wraps (help stays under 100 columns): compare with the spacing flattened
    t.match(help.replace(/\s+/g, ' '), f.meaning)
    for (const env of f.env) t.match(help, env)
  }
  t.match(
    help,
    '  -u, --proxy-uid VALUE\n        comma list of UIDs exempt from capture [default uid of $ENVOY_USER, else 1337; env\n        PROXY_UID]',
  )
  t.match(help, 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE')
  t.match(help, 'ISTIO_META_DNS_CAPTURE')
})

t.test('--help stays under 100 columns; --log-format takes json or text', async (t) => {
  t.same(
    helpText()
      .split('\n')
      .filter((l) => l.length >= 100),
    [],
  )
  t.equal(parseFlags(['--log-format', 'text'], { env: {} }).run.logFormat, 'text')
  rejects(t, ['--log-format', 'pretty'], `invalid value "pretty" for --log-format: expected 'json' or 'text'`)
})
