// The builder's in-pod plans applied to a throwaway namespace through the command, read back from the
// kernel, applied again (nothing to do), and cleaned up to nothing: rules, policy rule and route.
import t from 'tap'
import { verifyPlan } from '../../src/iptables/apply.js'
import { buildInpodPlan } from '../../src/inpod/build.js'
import { parseInpodFlags } from '../../src/inpod/flags.js'
import { inNs, ipRules, kernelState, rulesOnly, scratchNetns } from '../helpers/iptables-lab.js'
import { rootOnly } from '../helpers/root.js'
import { runInpod } from './run.js'

const opts = rootOnly()

async function routing(ns: string, family: '-4' | '-6'): Promise<{ rule: boolean; route: boolean }> {
  const rules = await ipRules(ns, family)
  const table = await inNs(ns, ['ip', family, 'route', 'show', 'table', '100'])
  return { rule: /^32764:\s+from all fwmark 0x111\/0xfff lookup 100\s*$/m.test(rules), route: /^local default dev lo\b/m.test(table) }
}

const flags = ['--ipv6', '--redirect-dns', '--virtual-interfaces', 'eth1,vm0']

for (const backend of ['iptables', 'nftables'] as const) {
  const argv = backend === 'nftables' ? ['--native-nftables', ...flags] : flags
  t.test(`${backend}: apply, read back, apply again, clean up`, opts, async (t) => {
    const ns = await scratchNetns(t)
    const s = parseInpodFlags(argv)
    const plan = buildInpodPlan(s.config, { mode: s.mode, nativeNftables: s.nativeNftables })
    const rulePlan = { backend: plan.backend, ipv4: plan.ipv4, ipv6: plan.ipv6, nft: plan.nft, tproxy: null }

    t.same(await runInpod([...argv, '--network-namespace', ns]), { code: 0, stdout: `applied in ${ns}\n`, stderr: '' })
    const state = await verifyPlan(rulePlan, { netns: ns })
    t.same([state.residue, state.delta], [true, []], 'every planned rule is in the kernel')
    const kernel = await kernelState(ns)
    if (backend === 'iptables') {
      t.match(kernel.v4, '-A ISTIO_PRERT -i vm0 -p tcp -j REDIRECT --to-ports 15001')
      t.match(kernel.v6, '-A ISTIO_OUTPUT ! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001')
      t.match(kernel.v4, /-A ISTIO_OUTPUT -p udp -m mark --mark 0x539\/0xfff -m udp --dport 53 -j CT --zone 1/)
    } else {
      for (const table of ['istio-ambient-nat', 'istio-ambient-mangle', 'istio-ambient-raw']) t.match(kernel.nft, `table inet ${table} {`)
      t.match(kernel.nft, /iifname "vm0" meta l4proto tcp counter redirect to :15001/)
    }
    t.same(await routing(ns, '-4'), { rule: true, route: true }, 'IPv4 policy routing')
    t.same(await routing(ns, '-6'), { rule: true, route: true }, 'IPv6 policy routing')

    t.same(await runInpod([...argv, '--network-namespace', ns]), { code: 0, stdout: `already in place in ${ns}\n`, stderr: '' })
    t.equal((await ipRules(ns, '-4')).split('\n').filter((l) => l.includes('0x111/0xfff')).length, 1, 'the policy rule once')

    t.same(await runInpod([...argv, '--cleanup-only', '--network-namespace', ns]), { code: 0, stdout: `cleaned up in ${ns}\n`, stderr: '' })
    const after = await kernelState(ns)
    t.equal(rulesOnly(after.v4), '')
    t.equal(rulesOnly(after.v6), '')
    t.notMatch(after.nft, /istio-ambient/)
    t.same(await routing(ns, '-4'), { rule: false, route: false })
    t.same(await routing(ns, '-6'), { rule: false, route: false })
  })
}

t.test('host rules are not applied, and nothing is changed trying', opts, async (t) => {
  const ns = await scratchNetns(t)
  await t.rejects(runInpod(['--host', '--network-namespace', ns]), {
    name: 'InvalidFlagError',
    message: /^--host rules can only be printed/,
  })
  t.equal(rulesOnly((await kernelState(ns)).v4), '')
})
