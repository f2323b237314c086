// The Plan apply.ts receives: which fields carry what, per backend and mode.
import t from 'tap'
import { buildPlan } from '../../src/iptables/build.js'
import { ruleConfig } from '../../src/iptables/config.js'

t.test('REDIRECT mode: restore text per family, no routing', async (t) => {
  const plan = buildPlan(ruleConfig({ enableIPv6: true }))
  t.equal(plan.backend, 'iptables')
  t.match(plan.ipv4, /^\* nat\n/)
  t.match(plan.ipv4, '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n')
  t.match(plan.ipv6, '-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN\n')
  t.equal(plan.nft, '')
  t.equal(plan.tproxy, null)
  t.equal(buildPlan(ruleConfig()).ipv6, '')
})

t.test('TPROXY mode asks for policy routing with the mark and table flags', async (t) => {
  const plan = buildPlan(
    ruleConfig({
      inboundInterceptionMode: 'TPROXY',
      inboundPortsInclude: '*',
      inboundTProxyMark: 7,
      inboundTProxyRouteTable: 99,
      enableIPv6: true,
    }),
  )
  t.same(plan.tproxy, { mark: 7, table: 99, ipv6: true })
  t.match(plan.ipv4, '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 7/0xffffffff --on-port 15006\n')
})

t.test('nftables: the script only', async (t) => {
  const plan = buildPlan(ruleConfig({ inboundInterceptionMode: 'TPROXY' }), { nativeNftables: true })
  t.equal(plan.backend, 'nftables')
  t.equal(plan.ipv4, '')
  t.equal(plan.ipv6, '')
  t.match(plan.nft, 'add rule inet istio-proxy-mangle istio-inbound meta l4proto tcp mark 1337 counter return\n')
  t.same(plan.tproxy, { mark: 1337, table: 133, ipv6: false })
})

t.test('a loopback CIDR in -i keeps app-to-self traffic capturable', async (t) => {
  const plain = buildPlan(ruleConfig()).ipv4
  const loop = buildPlan(ruleConfig({ outboundIPRangesInclude: '127.1.2.3/32' })).ipv4
  t.match(plain, '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n')
  t.notMatch(loop, '! --uid-owner')
  t.match(loop, '-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT\n')
})
