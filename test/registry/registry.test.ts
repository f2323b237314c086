// The registry's index against the linear matcher it replaced: same entry for every destination.
import { BlockList } from 'node:net'
import t from 'tap'
import type { Endpoint } from '../../src/net/address.js'
import { Registry, parseRegistryEntry, type RegistryEntry } from '../../src/registry/registry.js'

/** The old matcher (src/proxy/registry.ts before the index): one BlockList per entry, first match wins. */
function linearMatcher(entries: RegistryEntry[]): (dst: Endpoint) => RegistryEntry | undefined {
  const lists = entries.map((entry) => {
    const list = new BlockList()
    list.addSubnet(entry.address, entry.prefix, entry.family === 4 ? 'ipv4' : 'ipv6')
    return { entry, list }
  })
  return (dst) => {
    for (const { entry, list } of lists) {
      if ((entry.port === 0 || entry.port === dst.port) && list.check(dst.address, dst.family === 4 ? 'ipv4' : 'ipv6')) return entry
    }
    return undefined
  }
}

/** Deterministic, so a failure names a seed that reproduces it. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0
  return (n) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return Math.floor((s / 2 ** 32) * n)
  }
}

// A small address space, so entries overlap and destinations hit them; the IPv4-mapped, IPv4-compatible
// and zero forms are where IPv4 and IPv6 meet in BlockList.
function address(r: (n: number) => number): [string, 4 | 6] {
  const low = () => String(r(4))
  switch (r(7)) {
    case 0:
      return [`198.18.${low()}.${low()}`, 4]
    case 1:
      return [`198.19.${low()}.${r(256)}`, 4]
    case 2:
      return [`0.0.0.${low()}`, 4]
    case 3:
      return [`::ffff:198.18.${low()}.${low()}`, 6]
    case 4:
      return [`2001:2::${low()}`, 6]
    case 5:
      return [`2001:2:0:${low()}::${low()}`, 6]
    default:
      return [`::${low()}`, 6]
  }
}

function entryText(r: (n: number) => number, i: number): string {
  const [addr, family] = address(r)
  const max = family === 4 ? 32 : 128
  const prefix = r(3) === 0 ? '' : `/${r(2) ? max - r(10) : r(max + 1)}`
  const port = r(2) ? '' : String(80 + r(3))
  const body =
    family === 6 && port ? `[${addr}${prefix}]:${port}` : family === 6 ? `${addr}${prefix}` : `${addr}${prefix}${port && `:${port}`}`
  return r(2) ? `e${i}=${body}` : body
}

t.test('the index returns the same entry as the linear matcher for random registries and destinations', async (t) => {
  let compared = 0
  let matched = 0
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed)
    const entries = Array.from({ length: 1 + r(40) }, (_, i) => parseRegistryEntry(entryText(r, i), 'test'))
    const registry = new Registry(entries)
    const linearLookup = linearMatcher(entries)
    for (let k = 0; k < 100; k++) {
      const [addr, family] = address(r)
      const dst = { address: addr, port: 80 + r(3), family }
      const want = linearLookup(dst)
      const got = registry.lookup(dst)
      compared++
      if (want) matched++
      if (got !== want) {
        t.fail(`seed ${seed}: ${addr} port ${dst.port}`, {
          want,
          got,
          entries: entries.map((e) => `${e.name} ${e.address}/${e.prefix}:${e.port}`),
        })
        return
      }
    }
  }
  t.ok(matched > compared / 5 && matched < compared, `both hits and misses compared (${matched} of ${compared} matched)`)
})

t.test('first match in registry order wins, not the longest prefix', async (t) => {
  const entries = ['wide=198.18.0.0/16', 'narrow=198.18.0.7:80', 'v6=[2001:2::/48]:443', 'v6host=[2001:2::7]'].map((e) =>
    parseRegistryEntry(e, 'test'),
  )
  const registry = new Registry(entries)
  t.equal(registry.lookup({ address: '198.18.0.7', port: 80, family: 4 })?.name, 'wide')
  t.equal(registry.lookup({ address: '2001:2::7', port: 443, family: 6 })?.name, 'v6')
  t.equal(
    registry.lookup({ address: '2001:2::7', port: 80, family: 6 })?.name,
    'v6host',
    'a port-bound entry does not hide a later any-port one',
  )
  t.equal(registry.lookup({ address: '198.19.0.7', port: 80, family: 4 }), undefined)
})

t.test('IPv4 and IPv4-mapped IPv6 match each other, as they did with BlockList', async (t) => {
  const registry = new Registry(['mapped=::ffff:198.18.0.0/112', 'v4=198.19.0.0/16'].map((e) => parseRegistryEntry(e, 'test')))
  t.equal(registry.lookup({ address: '198.18.0.9', port: 1, family: 4 })?.name, 'mapped')
  t.equal(registry.lookup({ address: '::ffff:198.19.3.4', port: 1, family: 6 })?.name, 'v4')
  t.equal(registry.lookup({ address: '::198.19.3.4', port: 1, family: 6 }), undefined, 'IPv4-compatible is not mapped')
  t.equal(registry.lookup({ address: 'not-an-address', port: 1, family: 4 }), undefined)
})
