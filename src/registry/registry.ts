// The service registry for outboundTrafficPolicy REGISTRY_ONLY: destinations the mesh knows about, looked
// up on every outbound connection. An index, so a lookup costs the same with 10 entries or 100 000: per
// prefix length present, a Map from the masked address to the entries of that network (IPv4 networks keyed
// by number, IPv6 by string).
//
// Semantics are those of the linear matcher it replaced (one net.BlockList per entry, first match in
// registry order wins, port 0 = any port), including BlockList's mixing of families: an IPv4 address is
// the same as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so ::ffff:198.18.0.0/112 holds 198.18.0.9 and
// 198.18.0.0/16 holds ::ffff:198.18.0.9. Every address is therefore keyed as 128 bits, IPv4 as mapped
// and its prefix length plus 96. test/registry/registry.test.ts checks this against the old matcher.
import { isIP } from 'node:net'
import type { Endpoint } from '../net/address.js'
import type { RegistryEntry } from './entry.js'

export { parseRegistryEntry, parseRegistryText, type RegistryEntry } from './entry.js'

/** The entries of one network: the first (lowest index) for any port, and the first per port. */
interface Slot {
  any: number
  ports: Map<number, number> | undefined
}

interface PrefixTable {
  /** IPv4 tables hold networks inside ::ffff:0:0/96 keyed by the masked IPv4 number (no string to build) */
  ipv4: boolean
  bits: number
  /** lowest entry index in this table, so the search stops once no table can beat the match found */
  first: number
  slots: Map<string | number, Slot>
}

/** Matches destinations against the registry; first match in registry order wins. */
export class Registry {
  readonly #entries: readonly RegistryEntry[]
  readonly #tables: PrefixTable[]

  constructor(entries: RegistryEntry[]) {
    this.#entries = [...entries]
    const tables = new Map<string, PrefixTable>()
    this.#entries.forEach((entry, index) => {
      const bits = entry.family === 4 ? entry.prefix + 96 : entry.prefix
      const words = addressWords(entry.address, entry.family)!
      const ipv4 = bits >= 96 && isMapped(words)
      let table = tables.get(`${ipv4}/${bits}`)
      if (!table) tables.set(`${ipv4}/${bits}`, (table = { ipv4, bits, first: index, slots: new Map() }))
      const key = ipv4 ? ipv4Key(words[3]!, bits - 96) : networkKey(words, bits)
      let slot = table.slots.get(key)
      if (!slot) table.slots.set(key, (slot = { any: Infinity, ports: undefined }))
      if (entry.port === 0) slot.any = Math.min(slot.any, index)
      else if (!slot.ports?.has(entry.port)) (slot.ports ??= new Map()).set(entry.port, index)
    })
    this.#tables = [...tables.values()].sort((a, b) => a.first - b.first)
  }

  get size(): number {
    return this.#entries.length
  }

  lookup(dst: Endpoint): RegistryEntry | undefined {
    if (this.#tables.length === 0) return undefined
    const words = addressWords(dst.address, dst.family)
    if (words === undefined) return undefined
    const mapped = isMapped(words)
    let best = Infinity
    for (const table of this.#tables) {
      if (table.first >= best) break
      // An IPv6 network longer than /96 outside ::ffff:0:0/96 cannot hold an IPv4 address, and an IPv4
      // table cannot hold a plain IPv6 one.
      if (table.ipv4 ? !mapped : mapped && table.bits > 96) continue
      const slot = table.slots.get(table.ipv4 ? ipv4Key(words[3]!, table.bits - 96) : networkKey(words, table.bits))
      if (!slot) continue
      best = Math.min(best, slot.any, slot.ports?.get(dst.port) ?? Infinity)
    }
    return best === Infinity ? undefined : this.#entries[best]
  }
}

function isMapped(words: readonly number[]): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff
}

function ipv4Key(address: number, bits: number): number {
  return bits === 0 ? 0 : (address & (0xffffffff << (32 - bits))) >>> 0
}

/**
 * The network's first `bits` bits as a Map key. A string, not a BigInt: V8 hashes a BigInt by its low 64
 * bits only, so IPv6 services differing in the upper half (2001:2:N::1) would all share one hash bucket.
 */
function networkKey(words: readonly number[], bits: number): string {
  const whole = bits >>> 5
  const rest = bits & 31
  let key = `${bits}`
  for (let i = 0; i < whole; i++) key += `:${words[i]}`
  if (rest) key += `:${(words[whole]! & (0xffffffff << (32 - rest))) >>> 0}`
  return key
}

/** The address as four 32-bit words, IPv4 as ::ffff:a.b.c.d; undefined when not an address of that family. */
export function addressWords(address: string, family: 4 | 6): number[] | undefined {
  const zone = address.indexOf('%')
  const plain = zone === -1 ? address : address.slice(0, zone)
  if (isIP(plain) !== family) return undefined
  return family === 4 ? [0, 0, 0xffff, ipv4Number(plain)] : ipv6Words(plain)
}

function ipv4Number(address: string): number {
  const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number]
  return ((a * 256 + b) * 256 + c) * 256 + d
}

function ipv6Words(address: string): number[] {
  let text = address
  const last = text.lastIndexOf(':')
  if (text.includes('.', last)) {
    const n = ipv4Number(text.slice(last + 1))
    text = `${text.slice(0, last + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`
  }
  const gap = text.indexOf('::')
  const head = (gap === -1 ? text : text.slice(0, gap)).split(':').filter((g) => g !== '')
  const tail =
    gap === -1
      ? []
      : text
          .slice(gap + 2)
          .split(':')
          .filter((g) => g !== '')
  const groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail].map((g) => parseInt(g, 16))
  return [0, 2, 4, 6].map((i) => groups[i]! * 0x10000 + groups[i + 1]!)
}
