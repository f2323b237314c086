// --explain: a `#` comment above every rule, and nothing else changed.
import t from 'tap'
import { renderDryRun } from '../../src/iptables/build.js'
import type { BuildOptions } from '../../src/iptables/build.js'
import { ruleConfig } from '../../src/iptables/config.js'
import type { RuleConfig } from '../../src/iptables/config.js'
import { stripComments } from '../../src/iptables/explain.js'

const isRule = (line: string) => /^(-A|-I) |^(add|insert) rule /.test(line)

const variants: Array<[string, RuleConfig, BuildOptions]> = [
  ['defaults', ruleConfig(), {}],
  [
    'sidecar injector flags, DNS, IPv6',
    ruleConfig({
      inboundPortsInclude: '*',
      inboundPortsExclude: '15090,15021,15020',
      outboundIPRangesInclude: '*',
      redirectDNS: true,
      dnsServersV4: ['10.96.0.10'],
      dnsServersV6: ['fd00::a'],
      enableIPv6: true,
      outboundPortsExclude: '15020',
      excludeInterfaces: 'eth9',
      rerouteVirtualInterfaces: 'eth1',
      dropInvalid: true,
    }),
    {},
  ],
  [
    'TPROXY with DNS',
    ruleConfig({ inboundInterceptionMode: 'TPROXY', inboundPortsInclude: '*', redirectDNS: true, captureAllDNS: true }),
    {},
  ],
  [
    'owner groups',
    ruleConfig({ ownerGroupsInclude: 'java', outboundIPRangesInclude: '10.0.0.0/8', outboundIPRangesExclude: '10.1.0.0/16' }),
    {},
  ],
  [
    'nftables, TPROXY and DNS',
    ruleConfig({
      inboundInterceptionMode: 'TPROXY',
      inboundPortsInclude: '80',
      redirectDNS: true,
      dnsServersV4: ['10.96.0.10'],
      enableIPv6: true,
      outboundPortsInclude: '3306',
    }),
    { nativeNftables: true },
  ],
  [
    'legacy',
    ruleConfig({ inboundPortsInclude: '*', outboundIPRangesInclude: '10.0.0.0/8', redirectDNS: true, captureAllDNS: true }),
    { compat: 'legacy' },
  ],
]

for (const [name, config, options] of variants) {
  t.test(`${name}: every rule has a comment right above it`, async (t) => {
    const lines = renderDryRun(config, { ...options, explain: true }).split('\n')
    const rules = lines.map((line, i) => [line, lines[i - 1] ?? ''] as const).filter(([line]) => isRule(line))
    t.ok(rules.length > 5, `${rules.length} rules`)
    for (const [rule, above] of rules) t.match(above, /^# \S.{20,}/, rule)
  })

  t.test(`${name}: without the comments it is the plain plan`, async (t) => {
    const explained = renderDryRun(config, { ...options, explain: true })
    t.not(explained, renderDryRun(config, options))
    t.equal(stripComments(explained), renderDryRun(config, options))
  })
}

t.test('the comments say why: loop avoidance, the lo trick, DNS zones', async (t) => {
  const text = renderDryRun(ruleConfig({ redirectDNS: true, captureAllDNS: true }), { explain: true })
  const commentOf = (rule: string) => {
    const lines = text.split('\n')
    return lines[lines.indexOf(rule) - 1]
  }
  t.match(commentOf('-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN'), '127.0.0.6')
  t.match(commentOf('-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN'), 'looping back into Envoy')
  t.match(
    commentOf(
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
    ),
    'lo / ISTIO_IN_REDIRECT',
  )
  t.match(commentOf('-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2'), 'zone 2')
  t.match(commentOf('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001'), 'SO_ORIGINAL_DST')
})
