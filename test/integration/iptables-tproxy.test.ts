// TPROXY mode needs policy routing besides the rules: marked packets look up a table whose default
// route is local. applyPlan sets it up idempotently, cleanupPlan removes it.
import t from 'tap'
import { applyPlan, cleanupPlan, verifyPlan } from '../../src/iptables/apply.js'
import { silentLogger as logger } from '../../src/logger.js'
import { run } from '../../src/sys/exec.js'
import { rootOnly } from '../helpers/root.js'
import { ipRules, iptablesPlan, kernelState, nftPlan, rulesOnly, scratchNetns } from '../helpers/iptables-lab.js'

const opts = rootOnly()
const tproxy = { mark: 1337, table: 133, ipv6: true }

const route = async (ns: string, family: string) => (await run('ip', ['-n', ns, family, 'route', 'show', 'table', '133'])).stdout.trim()

for (const [backend, plan] of [
  ['iptables', iptablesPlan('tproxy', tproxy)],
  ['nftables', nftPlan('tproxy', tproxy)],
] as const) {
  t.test(`${backend}: TPROXY routing is set up once and removed by cleanup`, opts, async (t) => {
    const ns = await scratchNetns(t)
    const rulesBefore = { v4: await ipRules(ns, '-4'), v6: await ipRules(ns, '-6') }
    t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
    for (const family of ['-4', '-6'] as const) {
      const rules = (await ipRules(ns, family)).split('\n').filter((l) => l.includes('fwmark 0x539 lookup 133'))
      t.equal(rules.length, 1, `one ip ${family} rule`)
      t.match(await route(ns, family), /^local default dev lo\b/, `ip ${family} route in table 133`)
    }
    t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged')
    t.equal((await ipRules(ns, '-4')).match(/lookup 133/g)?.length, 1, 're-apply adds no second ip rule')

    await run('ip', ['-n', ns, '-6', 'rule', 'del', 'fwmark', '1337', 'lookup', '133'])
    t.same((await verifyPlan(plan, { netns: ns })).delta, ['routing: ip -6 rule fwmark 1337 lookup 133 missing'])
    t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged', 'rules unchanged; routing restored')
    t.match(await ipRules(ns, '-6'), /fwmark 0x539 lookup 133/)

    await cleanupPlan(plan, { netns: ns, logger })
    t.same({ v4: await ipRules(ns, '-4'), v6: await ipRules(ns, '-6') }, rulesBefore)
    t.equal(await route(ns, '-4'), '')
    t.equal(await route(ns, '-6'), '')
    const state = await kernelState(ns)
    t.equal(rulesOnly(state.v4) + rulesOnly(state.v6) + state.nft.replace(/table ip6? \S+ \{[\s\S]*?^\}\n?/gm, ''), '')
  })
}
