// The real builder's plans through apply / verify / cleanup, and the legacy layout against the seed's
// `iptables -S` listing, line for line.
//
// Ordering, found on iptables v1.8.9 (nf_tables): `iptables -S` and iptables-save print user chains
// (`-N` / `:X`) sorted by name in byte order (ISTIO_INBOUND before ISTIO_IN_REDIRECT), whatever order
// the restore text created them in (nft itself keeps creation order; iptables-legacy sorts too). `-A`
// lines come chain by chain, built-in chains first, each chain's rules in kernel order. So the builder
// may emit `-N` lines in any order; only the order of the rules within each chain has to match.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { applyPlan, cleanupPlan, verifyPlan } from '../../src/iptables/apply.js'
import { buildPlan, type BuildOptions } from '../../src/iptables/build.js'
import { parseFlags } from '../../src/iptables/flags.js'
import type { Plan } from '../../src/iptables/plan.js'
import { silentLogger as logger } from '../../src/logger.js'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { inNs, kernelState, rulesOnly, scratchNetns } from '../helpers/iptables-lab.js'

const opts = rootOnly()

function planFor(argv: string[], options: BuildOptions = {}): Plan {
  const { rules, run } = parseFlags(argv, { env: {} })
  return buildPlan(rules, { nativeNftables: run.nativeNftables, compat: run.compat, ...options })
}

/** The seed fixture's listing for one table: the lines under `# iptables -S -t <table>`. */
function seedListing(table: string): string {
  const text = readFileSync(new URL('../fixtures/apply/seed-listing.txt', import.meta.url), 'utf8')
  const section = new RegExp(`^# iptables -S -t ${table}\\n((?:[^#].*\\n)*)`, 'm').exec(text)
  if (!section) throw new Error(`no ${table} section in seed-listing.txt`)
  return section[1]!
}

const seedFlags = ['--compat', 'legacy', '-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT']
seedFlags.push('-i', '*', '-b', '*', '-d', '22,15020,15021,15090', '-o', '15020', '--redirect-dns', '--capture-all-dns')

t.test("legacy layout applied lists exactly as the seed's iptables -S, nat and raw", opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = planFor(seedFlags)
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
  t.equal(await inNs(ns, ['iptables', '-S', '-t', 'nat']), seedListing('nat'))
  t.equal(await inNs(ns, ['iptables', '-S', '-t', 'raw']), seedListing('raw'))
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged')
  await cleanupPlan(plan, { netns: ns, logger })
  t.equal(rulesOnly((await kernelState(ns)).v4), '')
})

const injector = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*']
injector.push('-d', '15090,15021,15020')
const cases: Array<[string, string[]]> = [
  ['injector defaults (REDIRECT)', injector],
  [
    'TPROXY, dual stack, DNS, excluded interface',
    ['-m', 'TPROXY', '-b', '*', '-i', '198.18.0.0/15', '--dual-stack', '--redirect-dns', '-c', 'eth9'],
  ],
  ['native nftables, TPROXY, dual stack', ['--native-nftables', '-m', 'TPROXY', '-b', '*', '-i', '*', '--dual-stack']],
  ['drop invalid, outbound ports, kube virt interfaces', ['--drop-invalid', '-q', '8080,9090', '-k', 'eth1', '-i', '*']],
]

for (const [name, argv] of cases) {
  t.test(`builder plan: ${name}: apply, no-op, verify, cleanup`, opts, async (t) => {
    const ns = await scratchNetns(t)
    const before = await kernelState(ns)
    const plan = planFor(argv)
    t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
    t.same(await verifyPlan(plan, { netns: ns }), { residue: true, delta: [] })
    t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged')
    await cleanupPlan(plan, { netns: ns, logger })
    const after = await kernelState(ns)
    t.equal(rulesOnly(after.v4), rulesOnly(before.v4))
    t.equal(rulesOnly(after.v6), rulesOnly(before.v6))
    if (plan.backend === 'nftables') t.equal(after.nft, before.nft)
    t.equal((await execIn(ns, ['ip', 'rule', 'show', 'table', '133'])).stdout, '')
  })
}

t.test('legacy layout: a missing rule in a built-in chain (raw OUTPUT) is named and reconciled', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = planFor(seedFlags)
  await applyPlan(plan, { netns: ns, logger })
  await execIn(ns, ['iptables', '-t', 'raw', '-D', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2'])
  t.same((await verifyPlan(plan, { netns: ns })).delta, ['ipv4 raw: missing rule -A OUTPUT -p udp --dport 53 -j CT --zone 2'])
  await t.rejects(applyPlan(plan, { netns: ns, logger }), { code: 'SIDECAR_ERR_RULES_DIFFER', message: /raw: missing rule/ })
  t.equal(await applyPlan(plan, { netns: ns, logger, reconcile: true }), 'reconciled')
  t.equal(await inNs(ns, ['iptables', '-S', '-t', 'raw']), seedListing('raw'), 'back in the seed order')
  t.equal(await inNs(ns, ['iptables', '-S', '-t', 'nat']), seedListing('nat'))
})
