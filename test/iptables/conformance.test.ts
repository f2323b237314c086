// Istio's own goldens: for every case the dry-run output equals the golden line for line (less its
// `iptables-save` / `ip6tables-save` state checks). Rendered through renderDryRun, what --dry-run prints.
import t from 'tap'
import { renderDryRun } from '../../src/iptables/build.js'
import { parseFlags } from '../../src/iptables/flags.js'
import { argvOf, casesFor, configOf, expected } from './cases.js'

const iptables = casesFor('iptables')
const nftables = casesFor('nftables')

t.test('the fixtures hold 27 iptables and 28 nftables cases', async (t) => {
  t.equal(iptables.length, 27)
  t.equal(nftables.length, 28)
})

for (const c of iptables) {
  t.test(`iptables ${c.name}`, async (t) => {
    t.equal(renderDryRun(configOf(c.fields)), expected(c.golden))
  })
}

for (const c of nftables) {
  t.test(`nftables ${c.name}`, async (t) => {
    t.equal(renderDryRun(configOf(c.fields), { nativeNftables: true }), expected(c.golden))
  })
}

const throughFlags = ['tproxy', 'dns-uid-gid', 'ipv6-ipnets', 'outbound-owner-groups-exclude', 'host-ipv4-loopback-cidr', 'drop-invalid']

t.test('case fields given as flags and environment reach the builder', async (t) => {
  for (const c of [...iptables, ...nftables].filter((x) => throughFlags.includes(x.name))) {
    const { argv, env } = argvOf(c)
    const { rules, run } = parseFlags(argv, { env })
    t.equal(
      renderDryRun(rules, { nativeNftables: run.nativeNftables }),
      expected(c.golden),
      `${c.backend} ${c.name}: ${argv.map((a) => (a === '' ? "''" : a)).join(' ')}`,
    )
  }
})
