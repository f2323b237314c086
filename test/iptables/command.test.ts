// The command as cli.ts runs it: stdout carries the plan and nothing else, errors surface as SidecarErrors.
import t from 'tap'
import { InvalidFlagError, UnknownFlagError } from '../../src/errors.js'
import { renderDryRun } from '../../src/iptables/build.js'
import { iptablesCommand } from '../../src/iptables/command.js'
import { ruleConfig } from '../../src/iptables/config.js'
import { helpText } from '../../src/iptables/flags.js'
import { runCommand } from '../helpers/command-io.js'

const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => runCommand(iptablesCommand, argv, env)

const injector = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020']
const injectorConfig = ruleConfig({
  inboundInterceptionMode: 'REDIRECT',
  outboundIPRangesInclude: '*',
  inboundPortsInclude: '*',
  inboundPortsExclude: '15090,15021,15020',
})

t.test('--dry-run prints the restore input and only that', async (t) => {
  const out = await run(['--dry-run', ...injector])
  t.equal(out.code, 0)
  t.equal(out.stdout, renderDryRun(injectorConfig))
  t.match(out.stdout, /^\* nat\n-N ISTIO_INBOUND\n/)
  t.match(out.stdout, '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN\n')
  t.match(out.stdout, '-A ISTIO_OUTPUT -j ISTIO_REDIRECT\nCOMMIT\n')
  t.equal(out.stderr, '')
})

t.test('-n with --dual-stack prints the IPv4 block, then the IPv6 block', async (t) => {
  const out = await run(['-n', '--dual-stack', ...injector])
  const blocks = out.stdout.split('COMMIT\n').filter(Boolean)
  t.equal(blocks.length, 2)
  t.match(blocks[0], '-s 127.0.0.6/32')
  t.match(blocks[1], '-s ::6/128')
})

t.test('--native-nftables --dry-run prints the nft script', async (t) => {
  const out = await run(['--native-nftables', '-n', ...injector])
  t.equal(out.stdout, renderDryRun(injectorConfig, { nativeNftables: true }))
  t.match(out.stdout, /^add table inet istio-proxy-nat\nflush table inet istio-proxy-nat\n/)
})

t.test('--cleanup-only --dry-run prints what cleanup removes, not the rules to add', async (t) => {
  const out = await run(['--cleanup-only', '--dry-run', ...injector])
  t.equal(out.code, 0)
  t.equal(
    out.stdout,
    [
      '# iptables-restore --noflush',
      '*nat',
      '-D OUTPUT -j ISTIO_OUTPUT',
      '-D PREROUTING -p tcp -j ISTIO_INBOUND',
      ...['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'].map((c) => `-F ${c}`),
      ...['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT'].map((c) => `-X ${c}`),
      'COMMIT',
      '',
    ].join('\n'),
  )
  const nft = await run(['--cleanup-only', '--dry-run', '--native-nftables', ...injector])
  t.equal(nft.stdout, 'delete table inet istio-proxy-nat\n')
  const tproxy = await run(['--cleanup-only', '--dry-run', '-m', 'TPROXY'])
  t.match(
    tproxy.stdout,
    /^# ip -4 rule del fwmark 1337 lookup 133\n# ip -4 route del local default dev lo table 133\n$/m,
    'TPROXY routing, as comments',
  )
})

t.test('-m TPROXY --dry-run also shows the ip rule and route it adds, as comments after the rules', async (t) => {
  const tproxy = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'TPROXY', '-i', '*', '-b', '*']
  const routing = ['# ip -4 rule add fwmark 1337 lookup 133', '# ip -4 route replace local default dev lo table 133']
  const out = await run(['--dry-run', ...tproxy])
  t.ok(out.stdout.endsWith('COMMIT\n' + routing.join('\n') + '\n'), out.stdout.slice(-300))
  const v6 = await run(['--dry-run', '--dual-stack', ...tproxy])
  t.ok(
    v6.stdout.endsWith(
      ['COMMIT', ...routing, '# ip -6 rule add fwmark 1337 lookup 133', '# ip -6 route replace local default dev lo table 133', ''].join(
        '\n',
      ),
    ),
  )
  const nft = await run(['--dry-run', '--native-nftables', ...tproxy])
  t.match(nft.stdout, /\n# ip -4 rule add fwmark 1337 lookup 133\n# ip -4 route replace local default dev lo table 133\n$/)
  t.notMatch((await run(['--dry-run', ...injector])).stdout, /# ip /, 'REDIRECT mode adds no routing')
})

t.test('-m with neither REDIRECT nor TPROXY: REDIRECT, as istio-iptables, with a warning naming the value', async (t) => {
  const out = await run(['--dry-run', ...injector.map((a) => (a === 'REDIRECT' ? 'tproxy' : a))])
  t.equal(out.code, 0)
  t.equal(out.stdout, renderDryRun(injectorConfig), 'the REDIRECT plan')
  t.equal(
    out.stderr,
    "warning: -m/--istio-inbound-interception-mode 'tproxy' is neither REDIRECT nor TPROXY: using REDIRECT, as istio-iptables does\n",
  )
  t.equal((await run(['--dry-run', ...injector])).stderr, '', 'no warning for REDIRECT')
})

t.test('--explain prints the commented plan without applying', async (t) => {
  const out = await run(['--explain', ...injector])
  t.equal(out.code, 0)
  t.equal(out.stdout, renderDryRun(injectorConfig, { explain: true }))
})

t.test('environment variables configure the command', async (t) => {
  const out = await run(['-n'], { ISTIO_INBOUND_PORTS: '8080', ENVOY_PORT: '16001' })
  t.match(out.stdout, '-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT\n')
  t.match(out.stdout, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001\n')
})

t.test('--help prints the flag list and exits 0', async (t) => {
  const out = await run(['--help'])
  t.equal(out.code, 0)
  t.equal(out.stdout, helpText())
})

t.test('bad input is an error cli.ts reports with exit 2', async (t) => {
  await t.rejects(
    run(['-n', '-p', '70000']),
    new InvalidFlagError('invalid value "70000" for --envoy-port (-p): not a port number (1-65535)'),
  )
  await t.rejects(run(['-n', '--frobnicate']), new UnknownFlagError('--frobnicate', 'sidecar-lab iptables'))
})
