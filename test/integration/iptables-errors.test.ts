// Bad inputs fail with a clear error and leave nothing of the plan behind: a namespace that does not
// exist, a missing program, restore text or an nft script the kernel rejects, routing that cannot be set.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { applyPlan, cleanupPlan } from '../../src/iptables/apply.js'
import { silentLogger as logger } from '../../src/logger.js'
import { execIn } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { ipRules, iptablesPlan, kernelState, nftPlan, rulesOnly, scratchNetns } from '../helpers/iptables-lab.js'

const opts = rootOnly()

t.test('a namespace that does not exist, by name or by path', opts, async (t) => {
  const plan = iptablesPlan('empty')
  await t.rejects(applyPlan(plan, { netns: 'slt-ipt-absent', logger }), {
    code: 'SIDECAR_ERR_NETNS_NOT_FOUND',
    message: "network namespace 'slt-ipt-absent' does not exist (see 'ip netns list')",
  })
  await t.rejects(cleanupPlan(plan, { netns: '/var/run/netns/slt-ipt-absent', logger }), {
    code: 'SIDECAR_ERR_NETNS_NOT_FOUND',
    message: /'\/var\/run\/netns\/slt-ipt-absent' does not exist/,
  })
})

t.test('a missing program is named before anything changes', opts, async (t) => {
  const ns = await scratchNetns(t)
  const before = await kernelState(ns)
  const bin = mkdtempSync(join(tmpdir(), 'slt-ipt-bin-'))
  symlinkSync('/usr/bin/nsenter', join(bin, 'nsenter'))
  const path = process.env.PATH
  process.env.PATH = bin
  t.teardown(() => {
    process.env.PATH = path
    rmSync(bin, { recursive: true, force: true })
  })
  await t.rejects(applyPlan(iptablesPlan('tproxy'), { netns: ns, logger }), {
    code: 'SIDECAR_ERR_MISSING_BINARY',
    message: 'iptables-restore not found on PATH: install iptables (apt-get install iptables)',
  })
  await t.rejects(applyPlan(nftPlan('empty'), { netns: ns, logger }), {
    code: 'SIDECAR_ERR_MISSING_BINARY',
    message: 'nft not found on PATH: install nftables (apt-get install nftables)',
  })
  process.env.PATH = path
  t.same(await kernelState(ns), before)
})

t.test('restore text the kernel rejects is rolled back, IPv4 included', opts, async (t) => {
  const ns = await scratchNetns(t)
  const good = iptablesPlan('empty')
  const plan = { ...good, ipv6: '* nat\n-N ISTIO_OUTPUT\n-A ISTIO_OUTPUT -j ISTIO_NOWHERE\nCOMMIT\n' }
  await t.rejects(applyPlan(plan, { netns: ns, logger }), {
    code: 'SIDECAR_ERR_COMMAND_FAILED',
    message:
      /^ip6tables-restore --noflush --wait \(in network namespace 'slt-ipt-\w+'\) failed \(exit 2\): .*Chain 'ISTIO_NOWHERE' does not exist/,
  })
  const state = await kernelState(ns)
  t.equal(rulesOnly(state.v4), '', 'the IPv4 block that had been applied is gone')
  t.equal(rulesOnly(state.v6), '')
})

t.test('a bad line in a later table leaves no earlier table behind', opts, async (t) => {
  const ns = await scratchNetns(t)
  const { ipv4 } = iptablesPlan('tproxy')
  const plan = { ...iptablesPlan('empty'), ipv4: ipv4.replace('-j CT --zone 1', '-j CT --zone nope') }
  await t.rejects(applyPlan(plan, { netns: ns, logger }), { code: 'SIDECAR_ERR_COMMAND_FAILED', message: /iptables-restore/ })
  t.equal(rulesOnly((await kernelState(ns)).v4), '')
})

t.test('an nft script the kernel rejects changes nothing', opts, async (t) => {
  const ns = await scratchNetns(t)
  const before = await kernelState(ns)
  const plan = nftPlan('tproxy')
  const bad = { ...plan, nft: plan.nft + 'add rule inet istio-proxy-raw istio-inbound counter jump istio-nowhere\n' }
  await t.rejects(applyPlan(bad, { netns: ns, logger }), {
    code: 'SIDECAR_ERR_COMMAND_FAILED',
    message: /^nft -f - \(in network namespace '[^']+'\) failed \(exit 1\): .*No such file or directory/,
  })
  t.same(await kernelState(ns), before)
})

t.test('routing that cannot be set up rolls back the rules and the routing done so far', opts, async (t) => {
  const ns = await scratchNetns(t)
  // IPv6 refuses a route through a device that is down ("Nexthop device is not up"); IPv4 accepts it.
  await execIn(ns, ['ip', 'link', 'set', 'lo', 'down'])
  const plan = iptablesPlan('tproxy', { mark: 1337, table: 133, ipv6: true })
  await t.rejects(applyPlan(plan, { netns: ns, logger }), { code: 'SIDECAR_ERR_COMMAND_FAILED', message: /ip -6 route/ })
  const state = await kernelState(ns)
  t.equal(rulesOnly(state.v4) + rulesOnly(state.v6), '')
  t.notMatch(await ipRules(ns, '-4'), /lookup 133/)
  t.notMatch(await ipRules(ns, '-6'), /lookup 133/)
})
