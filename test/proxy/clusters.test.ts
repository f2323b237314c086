import t from 'tap'
import { route } from '../../src/proxy/clusters.js'
import { Registry, parseRegistryEntry } from '../../src/registry/registry.js'

const base = { outboundPort: 15001, inboundPort: 15006, policy: 'ALLOW_ANY' as const, registry: new Registry([]) }
const dst = (address: string, port: number) => ({ address, port, family: (address.includes(':') ? 6 : 4) as 4 | 6 })

t.test('outbound goes to PassthroughCluster under ALLOW_ANY', async (t) => {
  t.match(route('outbound', dst('198.18.0.2', 9080), base), {
    kind: 'passthrough',
    cluster: 'PassthroughCluster',
    filterChain: 'virtualOutbound-catchall-tcp',
  })
})

t.test('inbound goes to the InboundPassthrough cluster of its family', async (t) => {
  t.match(route('inbound', dst('198.18.0.2', 9080), base), { cluster: 'InboundPassthroughClusterIpv4' })
  t.match(route('inbound', dst('2001:2::2', 9080), base), { cluster: 'InboundPassthroughClusterIpv6' })
})

t.test("no original destination, or the listener's own port, is a blackhole", async (t) => {
  t.match(route('outbound', undefined, base), {
    kind: 'blackhole',
    cluster: 'BlackHoleCluster',
    flags: 'NR',
    filterChain: 'virtualOutbound-blackhole',
  })
  t.match(route('outbound', dst('198.18.0.1', 15001), base), { kind: 'blackhole', flags: 'UH', reason: 'destination_is_proxy_listener' })
  t.match(route('inbound', dst('198.18.0.1', 15006), base), { kind: 'blackhole', filterChain: 'virtualInbound-blackhole' })
  t.match(route('outbound', dst('198.18.0.2', 15006), base), { kind: 'passthrough' }, 'a remote inbound port is passed on')
  t.match(
    route('inbound', dst('198.18.0.1', 15001), base),
    { kind: 'blackhole', reason: 'destination_is_proxy_listener' },
    "inbound to the pod's own :15001 is the outbound listener itself: not passed on to it",
  )
})

t.test('REGISTRY_ONLY passes registered destinations only', async (t) => {
  const registry = new Registry([parseRegistryEntry('reviews=198.18.0.0/24:9080', 'test'), parseRegistryEntry('[2001:2::/48]', 'test')])
  const opts = { ...base, policy: 'REGISTRY_ONLY' as const, registry }
  t.match(route('outbound', dst('198.18.0.7', 9080), opts), { kind: 'passthrough', serviceName: 'reviews' })
  t.match(route('outbound', dst('198.18.0.7', 9081), opts), { kind: 'blackhole', reason: 'registry_only' })
  t.match(route('outbound', dst('198.18.1.7', 9080), opts), { kind: 'blackhole' })
  t.match(route('outbound', dst('2001:2::9', 443), opts), { kind: 'passthrough' })
  t.match(route('inbound', dst('198.18.1.7', 9080), opts), { kind: 'passthrough' }, 'the policy is outbound only')
})

t.test('registry entries parse in all their forms', async (t) => {
  t.match(parseRegistryEntry('198.18.0.2', 'x'), { name: '198.18.0.2', address: '198.18.0.2', prefix: 32, port: 0, family: 4 })
  t.match(parseRegistryEntry('db=198.18.0.0/16:5432', 'x'), { name: 'db', address: '198.18.0.0', prefix: 16, port: 5432 })
  t.match(parseRegistryEntry('[2001:2::1]:80', 'x'), { address: '2001:2::1', prefix: 128, port: 80, family: 6 })
  t.match(parseRegistryEntry('2001:2::/48', 'x'), { address: '2001:2::', prefix: 48, port: 0, family: 6 })
  t.throws(() => parseRegistryEntry('2001:2::1:80:x', 'x'), { code: 'SIDECAR_ERR_INVALID_FLAG' })
})
