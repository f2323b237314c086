// `sidecar-lab inpod-rules` flags: what they set, and a clear error naming the flag for every bad value or
// combination.
import t from 'tap'
import type { Test } from 'tap'
import { InvalidFlagError, UnknownFlagError } from '../../src/errors.js'
import { inpodConfig } from '../../src/inpod/config.js'
import { COMMAND, helpText, parseInpodFlags } from '../../src/inpod/flags.js'
import { runInpod } from './run.js'

function rejects(t: Test, argv: string[], message: string | RegExp) {
  t.throws(() => parseInpodFlags(argv), { name: 'InvalidFlagError', message }, argv.join(' '))
}

t.test('no flags: the pod mode with istio-cni defaults', async (t) => {
  t.same(parseInpodFlags([]), {
    config: inpodConfig(),
    mode: 'pod',
    dryRun: false,
    nativeNftables: false,
    networkNamespace: '',
    cleanupOnly: false,
    help: false,
  })
  t.equal(inpodConfig().hostProbeSnatIPv4, '169.254.7.127')
  t.equal(inpodConfig().hostProbeSnatIPv6, 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff')
})

t.test('every flag reaches the settings', async (t) => {
  const s = parseInpodFlags([
    '-n',
    '--native-nftables',
    '--ipv6',
    '--redirect-dns',
    '--dns-proxy=disabled',
    '--ingress',
    '--virtual-interfaces',
    ' eth1, ,eth2 ',
    '--host-probe-snat-ipv4',
    '169.254.9.9',
    '--host-probe-snat-ipv6',
    'FD00:0:0:0:0:0:0:1',
    '--network-namespace',
    '/proc/1/ns/net',
  ])
  t.same(s.config, {
    ipv6: true,
    redirectDNS: true,
    dnsProxy: 'disabled',
    ingress: true,
    virtualInterfaces: ['eth1', 'eth2'],
    hostProbeSnatIPv4: '169.254.9.9',
    hostProbeSnatIPv6: 'fd00::1',
    kubeletUid: null,
  })
  t.same([s.mode, s.dryRun, s.nativeNftables, s.networkNamespace], ['pod', true, true, '/proc/1/ns/net'])
  const host = parseInpodFlags(['--host', '--native-nftables', '--kubelet-uid', '0'])
  t.same([host.mode, host.config.kubeletUid], ['host', 0])
})

t.test('the IPv6 SNAT address is written as Go prints it: lower case, longest zero run as ::', async (t) => {
  const v6 = (a: string) => parseInpodFlags(['--host-probe-snat-ipv6', a]).config.hostProbeSnatIPv6
  t.equal(v6('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1')
  t.equal(v6('2001:db8:0:0:1:0:0:0'), '2001:db8:0:0:1::')
  t.equal(v6('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1')
  t.equal(v6('fd16:9254:7127:1337:ffff:ffff:ffff:ffff'), 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff')
})

t.test('bad values are refused, naming the flag and the value', async (t) => {
  rejects(t, ['--dns-proxy', 'on'], '--dns-proxy: "on" is not one of enabled, disabled')
  rejects(t, ['--dns-proxy'], '--dns-proxy: give a value (--dns-proxy enabled|disabled)')
  rejects(t, ['--virtual-interfaces', ' , '], '--virtual-interfaces: " , " names no interface (eth1,eth2)')
  rejects(
    t,
    ['--virtual-interfaces', 'eth0,a-very-long-nic-name'],
    '--virtual-interfaces: interface "a-very-long-nic-name" longer than 15 bytes (IFNAMSIZ)',
  )
  rejects(t, ['--virtual-interfaces', 'veth/1'], `--virtual-interfaces: interface "veth/1" contains '/', ':' or whitespace`)
  rejects(t, ['--virtual-interfaces', '..'], `--virtual-interfaces: interface ".." '.' and '..' are not interface names`)
  rejects(t, ['--host-probe-snat-ipv4', 'fd00::1'], '--host-probe-snat-ipv4: "fd00::1" is not an IPv4 address')
  rejects(t, ['--host-probe-snat-ipv4', '169.254.7'], '--host-probe-snat-ipv4: "169.254.7" is not an IPv4 address')
  rejects(t, ['--host-probe-snat-ipv4', '0.0.0.0'], '--host-probe-snat-ipv4: 0.0.0.0 cannot be a source address')
  rejects(t, ['--host-probe-snat-ipv6', '169.254.7.127'], '--host-probe-snat-ipv6: "169.254.7.127" is not an IPv6 address')
  rejects(t, ['--host-probe-snat-ipv6', 'fe80::1%eth0'], '--host-probe-snat-ipv6: "fe80::1%eth0" has a zone; give a plain IPv6 address')
  rejects(t, ['--host-probe-snat-ipv6', '::'], '--host-probe-snat-ipv6: :: cannot be a source address')
  rejects(
    t,
    ['--host-probe-snat-ipv6', '::ffff:169.254.7.127'],
    '--host-probe-snat-ipv6: "::ffff:169.254.7.127" is an IPv4-mapped address; the IPv6 SNAT source must be IPv6',
  )
  rejects(t, ['--host', '--native-nftables', '--kubelet-uid', '-1'], '--kubelet-uid: -1 is out of range (0 to 4294967294)')
  rejects(t, ['--host', '--native-nftables', '--kubelet-uid', '4294967295'], '--kubelet-uid: 4294967295 is out of range (0 to 4294967294)')
  rejects(t, ['--network-namespace', ''], '--network-namespace: give a path (/proc/PID/ns/net) or a name')
})

t.test('combinations that mean nothing are refused', async (t) => {
  for (const pod of [['--ingress'], ['--virtual-interfaces', 'eth1'], ['--dns-proxy', 'enabled']]) {
    rejects(t, ['--host', ...pod], `${pod[0]} is a pod's setting; --host builds the node's probe rules, which have none`)
  }
  const uidOnlyNft = /^--kubelet-uid is for --host --native-nftables only/
  rejects(t, ['--kubelet-uid', '1000'], uidOnlyNft)
  rejects(t, ['--host', '--kubelet-uid', '1000'], uidOnlyNft)
  rejects(t, ['--native-nftables', '--kubelet-uid', '1000'], uidOnlyNft)
  rejects(t, ['--host', '--native-nftables'], /^--host --native-nftables needs --kubelet-uid N/)
})

t.test('unknown flags and arguments', async (t) => {
  t.throws(() => parseInpodFlags(['--tproxy']), new UnknownFlagError('--tproxy', COMMAND))
  t.throws(() => parseInpodFlags(['pod']), InvalidFlagError)
  t.throws(() => parseInpodFlags(['--ipv6=yes']), { message: `--ipv6 takes no value (see '${COMMAND} --help')` })
})

t.test('--help fits in 100 columns and names every flag', async (t) => {
  const out = await runInpod(['--help'])
  t.equal(out.code, 0)
  t.equal(out.stdout, helpText())
  for (const line of out.stdout.split('\n')) t.ok(line.length < 100, `${line.length}: ${line}`)
  for (const flag of ['dry-run', 'native-nftables', 'ipv6', 'redirect-dns', 'dns-proxy', 'ingress', 'virtual-interfaces', 'host']) {
    t.match(out.stdout, `--${flag} `)
  }
  for (const flag of ['host-probe-snat-ipv4', 'host-probe-snat-ipv6', 'kubelet-uid', 'network-namespace', 'cleanup-only']) {
    t.match(out.stdout, `--${flag}`)
  }
})

t.test('without --dry-run it applies: a namespace that does not exist is an error before anything runs', async (t) => {
  await t.rejects(runInpod(['--redirect-dns', '--network-namespace', '/nonexistent/inpod-ns']), {
    name: 'NetnsNotFoundError',
    message: "network namespace '/nonexistent/inpod-ns' does not exist (see 'ip netns list')",
  })
  rejects(t, ['--dry-run', '--cleanup-only'], '--cleanup-only and --dry-run: printing what cleanup removes is not built; choose one')
})
