// The nftables backend: the plan's script applied as one `nft -f -` transaction, verified against nft's
// own listing of the same script, cleaned up by deleting the istio-proxy-* tables.
import t from 'tap'
import { applyPlan, cleanupPlan, verifyPlan } from '../../src/iptables/apply.js'
import { silentLogger as logger } from '../../src/logger.js'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { inNs, kernelState, nftPlan, scratchNetns } from '../helpers/iptables-lab.js'

const opts = rootOnly()

/** The handle of the first rule in a chain whose text contains `needle`. */
async function handleOf(ns: string, table: string, chain: string, needle: string): Promise<string> {
  const listing = await inNs(ns, ['nft', '-a', 'list', 'chain', 'inet', table, chain])
  const line = listing.split('\n').find((l) => l.includes(needle))
  const handle = /# handle (\d+)/.exec(line ?? '')?.[1]
  if (!handle) throw new Error(`no rule with '${needle}' in ${chain}:\n${listing}`)
  return handle
}

t.test('nft apply, no-op re-apply, verify equal', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = nftPlan('tproxy')
  t.same(await verifyPlan(plan, { netns: ns }), {
    residue: false,
    delta: [
      'nft: table inet istio-proxy-nat missing',
      'nft: table inet istio-proxy-mangle missing',
      'nft: table inet istio-proxy-raw missing',
    ],
  })
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
  const tables = await inNs(ns, ['nft', 'list', 'tables'])
  t.equal(tables, 'table inet istio-proxy-nat\ntable inet istio-proxy-mangle\ntable inet istio-proxy-raw\n')
  t.match(await inNs(ns, ['nft', 'list', 'chain', 'inet', 'istio-proxy-nat', 'istio-redirect']), /redirect to :15001/)
  const first = await kernelState(ns)
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged')
  t.same(await kernelState(ns), first)
  t.same(await verifyPlan(plan, { netns: ns }), { residue: true, delta: [] })
})

t.test('nft: a deleted and an added rule are named; reconcile restores the plan', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = nftPlan('empty')
  await applyPlan(plan, { netns: ns, logger })
  const clean = await kernelState(ns)
  const handle = await handleOf(ns, 'istio-proxy-nat', 'istio-output', 'skgid 1337 counter packets 0 bytes 0 return')
  await execIn(ns, ['nft', 'delete', 'rule', 'inet', 'istio-proxy-nat', 'istio-output', 'handle', handle])
  await execIn(ns, ['nft', 'add', 'rule', 'inet', 'istio-proxy-nat', 'istio-redirect', 'udp', 'dport', '9', 'return'])
  const { delta } = await verifyPlan(plan, { netns: ns })
  t.same(delta, [
    'nft inet istio-proxy-nat: chain istio-redirect extra rule: udp dport 9 return',
    'nft inet istio-proxy-nat: chain istio-output missing rule: meta skgid 1337 counter return',
  ])
  await t.rejects(applyPlan(plan, { netns: ns, logger }), {
    code: 'SIDECAR_ERR_RULES_DIFFER',
    message: /istio-output missing rule: meta skgid 1337 counter return/,
  })
  t.equal(await applyPlan(plan, { netns: ns, logger, reconcile: true }), 'reconciled')
  t.same(await kernelState(ns), clean)
})

t.test('nft cleanup returns nft list ruleset to what it printed before', opts, async (t) => {
  const ns = await scratchNetns(t)
  await execIn(ns, ['nft', 'add', 'table', 'inet', 'someone-else'])
  const before = await kernelState(ns)
  const plan = nftPlan('tproxy')
  await applyPlan(plan, { netns: ns, logger })
  await cleanupPlan(plan, { netns: ns, logger })
  t.same(await kernelState(ns), before, 'nothing lingers: the nft backend creates no iptables tables')
  await cleanupPlan(plan, { netns: ns, logger })
  t.same(await kernelState(ns), before, 'a second cleanup is a no-op')
})
