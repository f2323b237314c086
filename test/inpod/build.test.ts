// Configurations beyond Istio's goldens, built and checked for what matters: DNS capture exactly when the
// pod's override or the node's setting asks for it, every virtual interface with its two rules, ingress
// without inbound capture, IPv6 twins only with --ipv6, the SNAT addresses and the policy routing.
import t from 'tap'
import { buildInpodIptables } from '../../src/inpod/build-iptables.js'
import { buildInpodNft } from '../../src/inpod/build-nftables.js'
import { buildInpodPlan, planText } from '../../src/inpod/build.js'
import { capturesDNS, inpodConfig } from '../../src/inpod/config.js'
import type { DnsProxy, InpodConfig } from '../../src/inpod/config.js'
import { runInpod } from './run.js'

const text = (c: InpodConfig, nativeNftables: boolean, mode: 'pod' | 'host' = 'pod') =>
  planText(buildInpodPlan(c, { mode, nativeNftables }))
const lines = (s: string) => s.split('\n').filter(Boolean)

t.test('DNS is captured only when the pod enables it, or the node does and the pod does not refuse', async (t) => {
  for (const redirectDNS of [false, true]) {
    for (const dnsProxy of ['unset', 'enabled', 'disabled'] as DnsProxy[]) {
      const want = dnsProxy === 'enabled' || (dnsProxy === 'unset' && redirectDNS)
      const c = inpodConfig({ redirectDNS, dnsProxy, ipv6: true })
      const label = `redirectDNS ${redirectDNS}, dns-proxy ${dnsProxy}`
      t.equal(capturesDNS(c), want, label)

      const ipt = text(c, false)
      const dnsIpt = lines(ipt).filter((l) => /15053|--zone 1/.test(l))
      // per family: the UDP and TCP redirects to 15053 and the two CT zone rules
      t.equal(dnsIpt.length, want ? 8 : 0, `iptables ${label}: ${dnsIpt.join(' | ')}`)
      t.equal((ipt.match(/^\* raw$/gm) ?? []).length, want ? 2 : 0, `iptables ${label}: a raw table per family`)

      const nft = text(c, true)
      const dnsNft = lines(nft).filter((l) => /redirect to :15053|ct zone set 1/.test(l))
      t.equal(dnsNft.length, want ? 5 : 0, `nftables ${label}: UDP, TCP for each family, and the two zones`)
      t.equal(nft.includes('add table inet istio-ambient-raw'), want, `nftables ${label}: the raw table`)
    }
  }
})

t.test('each virtual interface gets its redirect to 15001 and its RETURN, first in the prerouting chain', async (t) => {
  const nics = ['eth1', 'vm0', 'tap-7']
  for (const ingress of [false, true]) {
    const c = inpodConfig({ virtualInterfaces: nics, ipv6: true, ingress })
    for (const block of [buildInpodIptables(c).v4, buildInpodIptables(c).v6]) {
      const prert = block.filter((r) => r.table === 'nat' && r.chain === 'ISTIO_PRERT').map((r) => r.params.join(' '))
      const expected = nics.flatMap((n) => [
        `-A ISTIO_PRERT -i ${n} -p tcp -j REDIRECT --to-ports 15001`,
        `-A ISTIO_PRERT -i ${n} -p tcp -j RETURN`,
      ])
      t.same(prert.slice(0, 6), expected, `iptables, ingress ${ingress}`)
    }
    const nft = buildInpodNft(c).rules.filter((r) => r.table === 'istio-ambient-nat' && r.chain === 'istio-prerouting')
    t.same(
      nft.slice(0, 6).map((r) => r.body),
      nics.flatMap((n) => [`iifname ${n} meta l4proto tcp counter redirect to :15001`, `iifname ${n} meta l4proto tcp counter return`]),
      `nftables, ingress ${ingress}`,
    )
  }
})

t.test('an ingress pod keeps outbound capture but has no inbound redirect and no probe exemption inbound', async (t) => {
  const c = inpodConfig({ ingress: true, ipv6: true })
  for (const native of [false, true]) {
    const out = text(c, native)
    t.notMatch(out, /15006/, 'no redirect to the inbound plaintext port')
    t.notMatch(out, /-s 169\.254\.7\.127|saddr 169\.254\.7\.127/, 'no probe accept inbound')
    t.match(out, /-d 169\.254\.7\.127|daddr 169\.254\.7\.127/, 'the probe replies still pass')
    t.match(out, /15001/, 'outbound still goes to ztunnel')
  }
  t.match(text(inpodConfig({ ipv6: true }), false), /--to-ports 15006/)
})

t.test('IPv6 rules only with --ipv6, each next to its IPv4 twin', async (t) => {
  const v4only = inpodConfig({ redirectDNS: true })
  t.equal(buildInpodPlan(v4only, { mode: 'pod', nativeNftables: false }).ipv6, '')
  t.notMatch(text(v4only, true), /ip6 |::1/)
  const dual = inpodConfig({ redirectDNS: true, ipv6: true, hostProbeSnatIPv6: 'fd00::7' })
  const rules = buildInpodNft(dual).rules
  rules.forEach((r, i) => {
    if (!r.body.includes('ip6 ')) return
    const twin = rules[i - 1]!
    t.equal(twin.note, r.note, `${r.body} follows its IPv4 twin`)
    t.match(twin.body, /ip (s|d)addr/)
  })
  t.equal(rules.filter((r) => r.body.includes('ip6 ')).length, 6, 'probe in, probe out, inbound, DNS TCP, lo, outbound')
  const plan = buildInpodPlan(dual, { mode: 'pod', nativeNftables: false })
  t.match(plan.ipv6, '-A ISTIO_PRERT -s fd00::7 -p tcp -m tcp -j ACCEPT')
  t.match(plan.ipv6, '-A ISTIO_OUTPUT ! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001')
  t.notMatch(plan.ipv6, /127\.0\.0\.1|169\.254/)
})

t.test('the SNAT addresses reach the pod rules and the host rules of both backends', async (t) => {
  const c = inpodConfig({ ipv6: true, hostProbeSnatIPv4: '169.254.42.1', hostProbeSnatIPv6: 'fd00::42', kubeletUid: 4242 })
  for (const native of [false, true]) {
    for (const mode of ['pod', 'host'] as const) {
      const out = text(c, native, mode)
      t.match(out, '169.254.42.1', `${native ? 'nft' : 'iptables'} ${mode}`)
      t.match(out, 'fd00::42', `${native ? 'nft' : 'iptables'} ${mode}`)
      t.notMatch(out, /169\.254\.7\.127|fd16:/)
    }
  }
  t.match(text(c, true, 'host'), 'meta l4proto tcp skuid 4242 ip6 daddr @istio-inpod-probes-v6 counter snat to fd00::42')
  t.match(
    text(c, false, 'host'),
    '-A ISTIO_POSTRT -m owner --socket-exists -p tcp -m set --match-set istio-inpod-probes-v6 dst -j SNAT --to-source fd00::42',
  )
})

t.test('in-pod plans carry the policy routing, IPv6 with --ipv6; host plans none', async (t) => {
  for (const native of [false, true]) {
    const v4 = buildInpodPlan(inpodConfig(), { mode: 'pod', nativeNftables: native }).routing
    t.same(v4, {
      families: ['-4'],
      routes: ['ip route replace local 0.0.0.0/0 dev lo table 100'],
      rules: ['ip rule add fwmark 0x111/0xfff pref 32764 lookup 100'],
    })
    const v6 = buildInpodPlan(inpodConfig({ ipv6: true }), { mode: 'pod', nativeNftables: native }).routing
    t.same(v6?.families, ['-4', '-6'])
    t.same(v6?.routes.at(1), 'ip -6 route replace local ::/0 dev lo table 100')
    t.same(v6?.rules.at(1), 'ip -6 rule add fwmark 0x111/0xfff pref 32764 lookup 100')
  }
  t.equal(buildInpodPlan(inpodConfig({ kubeletUid: 0 }), { mode: 'host', nativeNftables: true }).routing, null)

  const pod = await runInpod(['--dry-run', '--ipv6'])
  t.equal(pod.stderr.split('\n').filter((l) => l.startsWith('  ip ')).length, 4, 'dry-run names the four steps on stderr')
  t.match(pod.stderr, '  ip route replace local 0.0.0.0/0 dev lo table 100\n')
  t.notMatch(pod.stdout, /ip (rule|route)/, 'stdout holds the rules only')
  const host = await runInpod(['--dry-run', '--host'])
  t.equal(host.stderr, '')
})
