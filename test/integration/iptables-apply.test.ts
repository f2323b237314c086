// applyPlan / verifyPlan / cleanupPlan with the iptables-restore backend, in namespaces the tests create.
// Plans are Istio's own golden outputs, so the kernel sees exactly what istio-iptables would give it.
import t from 'tap'
import { applyPlan, cleanupPlan, verifyPlan } from '../../src/iptables/apply.js'
import { silentLogger as logger } from '../../src/logger.js'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { iptablesPlan, kernelState, rulesOnly, saved, scratchNetns, tableSections } from '../helpers/iptables-lab.js'

const opts = rootOnly()

t.test('apply into an empty namespace installs the plan and verify finds it equal', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  t.same(await verifyPlan(plan, { netns: ns }), { residue: false, delta: ['ipv4 nat: table missing'] })
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
  const nat = (await execIn(ns, ['iptables', '-S', '-t', 'nat'])).stdout
  t.match(nat, /^-N ISTIO_OUTPUT$/m)
  t.match(nat, /^-A OUTPUT -j ISTIO_OUTPUT$/m)
  t.match(
    nat,
    /^-A ISTIO_OUTPUT ! -d 127\.0\.0\.1\/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT$/m,
  )
  t.same(await verifyPlan(plan, { netns: ns }), { residue: true, delta: [] })
})

t.test('applying the same plan twice is a no-op, not "line 2 failed"', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('tproxy')
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'applied')
  const first = await kernelState(ns)
  t.equal(await applyPlan(plan, { netns: ns, logger }), 'unchanged')
  t.same(await kernelState(ns), first, 'kernel state unchanged by the second run')
})

t.test('a deleted rule makes apply fail with what differs, and reconcile repairs it', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  await applyPlan(plan, { netns: ns, logger })
  const wanted = await saved(ns)
  await execIn(ns, ['iptables', '-t', 'nat', '-D', 'ISTIO_OUTPUT', '-m', 'owner', '--gid-owner', '1337', '-j', 'RETURN'])
  const state = await verifyPlan(plan, { netns: ns })
  t.equal(state.residue, true)
  t.same(state.delta, [
    'ipv4 nat: chain ISTIO_OUTPUT holds 7 rules, the plan has 8',
    'ipv4 nat: missing rule -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
  ])
  await t.rejects(applyPlan(plan, { netns: ns, logger }), {
    code: 'SIDECAR_ERR_RULES_DIFFER',
    message: /differ from the plan[\s\S]*missing rule -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN/,
  })
  t.equal(await applyPlan(plan, { netns: ns, logger, reconcile: true }), 'reconciled')
  t.equal(await saved(ns), wanted, 'the same rules in the same order as a clean apply')
  t.same((await verifyPlan(plan, { netns: ns })).delta, [])
})

t.test('an extra rule and an extra ISTIO_ chain are named in the error', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  await applyPlan(plan, { netns: ns, logger })
  await execIn(ns, ['iptables', '-t', 'nat', '-A', 'ISTIO_REDIRECT', '-p', 'udp', '-j', 'RETURN'])
  await execIn(ns, ['iptables', '-t', 'nat', '-N', 'ISTIO_STRAY'])
  const { delta } = await verifyPlan(plan, { netns: ns })
  t.same(delta, [
    'ipv4 nat: chain ISTIO_REDIRECT holds 2 rules, the plan has 1',
    'ipv4 nat: extra rule -A ISTIO_REDIRECT -p udp -j RETURN',
    'ipv4 nat: extra chain ISTIO_STRAY',
  ])
  await t.rejects(applyPlan(plan, { netns: ns, logger }), { code: 'SIDECAR_ERR_RULES_DIFFER', message: /ISTIO_STRAY/ })
  t.equal(await applyPlan(plan, { netns: ns, logger, reconcile: true }), 'reconciled')
  const nat = await saved(ns)
  t.notMatch(nat, /ISTIO_STRAY|-p udp -j RETURN/)
  t.same((await verifyPlan(plan, { netns: ns })).delta, [])
})

t.test('cleanup returns iptables-save and ip6tables-save to what they printed before', opts, async (t) => {
  const ns = await scratchNetns(t)
  // A rule of someone else's in a built-in chain must survive cleanup.
  await execIn(ns, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-d', '198.18.0.9/32', '-j', 'RETURN'])
  const before = await kernelState(ns)
  const plan = iptablesPlan('tproxy')
  await applyPlan(plan, { netns: ns, logger })
  t.match((await kernelState(ns)).v6, /-A ISTIO_TPROXY ! -d ::1\/128 -p tcp -j TPROXY/, 'IPv6 block applied')
  await cleanupPlan(plan, { netns: ns, logger })
  const after = await kernelState(ns)
  const [was, now] = [tableSections(before.v4), tableSections(after.v4)]
  t.equal(now.get('nat'), was.get('nat'), 'nat existed before: its iptables-save section is byte-identical')
  // iptables-nft leaves the tables it created (mangle, raw, ip6 nat...) behind, empty; the rules match.
  t.same([...now.keys()].sort(), ['mangle', 'nat', 'raw'])
  t.equal(rulesOnly(after.v4), rulesOnly(before.v4))
  t.equal(rulesOnly(after.v6), rulesOnly(before.v6))
  t.equal(rulesOnly(after.v4), '-A OUTPUT -d 198.18.0.9/32 -j RETURN')
  t.equal(after.nft.includes('ISTIO'), false)
  t.match(await verifyPlan(plan, { netns: ns }), { residue: false })
})

t.test('cleanup with nothing there is a no-op success', opts, async (t) => {
  const ns = await scratchNetns(t)
  const before = await kernelState(ns)
  await cleanupPlan(iptablesPlan('tproxy'), { netns: ns, logger })
  t.same(await kernelState(ns), before)
})

t.test('forceApply applies without checking, and cleanup removes every copy', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  const before = await saved(ns)
  t.equal(await applyPlan(plan, { netns: ns, logger, forceApply: true }), 'applied')
  // The second restore creates the chains again, which iptables refuses: forceApply skips the check only.
  await t.rejects(applyPlan(plan, { netns: ns, logger, forceApply: true }), { code: 'SIDECAR_ERR_COMMAND_FAILED' })
  t.equal(rulesOnly(await saved(ns)), rulesOnly(before), 'the failed run rolled everything back')
})

t.test('the IPv6 block goes to ip6tables and verifies on its own', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('ipv6-inbound-ports')
  t.ok(plan.ipv6.includes('::6/128'), 'fixture has an IPv6 block')
  await applyPlan(plan, { netns: ns, logger })
  t.match(await saved(ns, 'ip6tables-save'), /^-A ISTIO_OUTPUT -s ::6\/128 -o lo -j RETURN$/m)
  await execIn(ns, ['ip6tables', '-t', 'nat', '-F', 'ISTIO_INBOUND'])
  const { delta } = await verifyPlan(plan, { netns: ns })
  t.ok(delta.length > 0 && delta.every((d) => d.startsWith('ipv6 nat')), 'only the IPv6 side differs')
  await cleanupPlan(plan, { netns: ns, logger })
  t.equal(rulesOnly(await saved(ns, 'ip6tables-save')), '')
  t.equal(rulesOnly(await saved(ns)), '')
})

t.test('a namespace given by path, as istio-iptables --network-namespace takes it', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  t.equal(await applyPlan(plan, { netns: `/var/run/netns/${ns}`, logger }), 'applied')
  t.equal(await applyPlan(plan, { netns: `/run/netns/${ns}`, logger }), 'unchanged')
  await cleanupPlan(plan, { netns: `/var/run/netns/${ns}`, logger })
  t.equal(rulesOnly(await saved(ns)), '')
})

t.test('the same rules in another order differ (Istio’s count and -C checks alone would pass)', opts, async (t) => {
  const ns = await scratchNetns(t)
  const plan = iptablesPlan('empty')
  await applyPlan(plan, { netns: ns, logger })
  const wanted = await saved(ns)
  await execIn(ns, ['iptables', '-t', 'nat', '-D', 'ISTIO_OUTPUT', '-d', '127.0.0.1/32', '-j', 'RETURN'])
  await execIn(ns, ['iptables', '-t', 'nat', '-I', 'ISTIO_OUTPUT', '1', '-d', '127.0.0.1/32', '-j', 'RETURN'])
  t.same(await verifyPlan(plan, { netns: ns }), {
    residue: true,
    delta: ['ipv4 nat: chain ISTIO_OUTPUT holds the planned rules in another order'],
  })
  await t.rejects(applyPlan(plan, { netns: ns, logger }), { code: 'SIDECAR_ERR_RULES_DIFFER' })
  t.equal(await applyPlan(plan, { netns: ns, logger, reconcile: true }), 'reconciled')
  t.equal(await saved(ns), wanted)
})
