// Records nftables rules and renders them as one `nft -f` transaction the way istio-iptables does: per
// table (nat, mangle, raw) add + flush the table, add the chains that hold rules in a fixed order, then
// the rules, each with a counter before its verdict.
import type { NoteId } from './explain.js'

export interface NftRule {
  table: string
  chain: string
  /** the match part ('' matches everything) */
  match: string
  /** the statement the counter precedes: verdict, redirect, mark or zone setting */
  action: string
  /** insert at this position instead of appending */
  index?: number
  note: NoteId
}

export class NftRuleSet {
  readonly rules: NftRule[] = []
  #ipv6: boolean

  constructor(ipv6: boolean) {
    this.#ipv6 = ipv6
  }

  add(note: NoteId, table: string, chain: string, match: string, action: string): void {
    this.rules.push({ table, chain, match, action, note })
  }

  addV6(note: NoteId, table: string, chain: string, match: string, action: string): void {
    if (this.#ipv6) this.add(note, table, chain, match, action)
  }

  insert(note: NoteId, table: string, chain: string, index: number, match: string, action: string): void {
    this.rules.push({ table, chain, match, action, index, note })
  }

  insertV6(note: NoteId, table: string, chain: string, index: number, match: string, action: string): void {
    if (this.#ipv6) this.insert(note, table, chain, index, match, action)
  }
}

const base = (type: string, hook: string, priority: number) => `{ type ${type} hook ${hook} priority ${priority} ; }`

/** Tables in the order they are written, each with its chains in the order they are declared. */
const tables: Array<[string, Array<[string, string?]>]> = [
  [
    'istio-proxy-nat',
    [
      ['prerouting', base('nat', 'prerouting', -100)],
      ['output', base('nat', 'output', -100)],
      ['istio-inbound'],
      ['istio-redirect'],
      ['istio-in-redirect'],
      ['istio-output'],
      ['istio-output-dns'],
    ],
  ],
  [
    'istio-proxy-mangle',
    [
      ['prerouting', base('filter', 'prerouting', -150)],
      ['output', base('route', 'output', -150)],
      ['istio-divert'],
      ['istio-tproxy'],
      ['istio-inbound'],
      ['istio-drop'],
    ],
  ],
  [
    'istio-proxy-raw',
    [
      ['prerouting', base('filter', 'prerouting', -300)],
      ['output', base('filter', 'output', -300)],
      ['istio-inbound'],
      ['istio-output-dns'],
    ],
  ],
]

export function renderNft(rules: readonly NftRule[], annotate?: (rule: NftRule) => string[]): string {
  const out: string[] = []
  for (const [table, chains] of tables) {
    const own = rules.filter((r) => r.table === table)
    const used = chains.filter(([name]) => own.some((r) => r.chain === name))
    if (used.length === 0) continue
    out.push(`add table inet ${table}`, `flush table inet ${table}`)
    for (const [name, spec] of used) out.push(`add chain inet ${table} ${name}${spec ? ` ${spec}` : ''}`)
    const counts = new Map<string, number>()
    for (const r of own) {
      const count = counts.get(r.chain) ?? 0
      counts.set(r.chain, count + 1)
      const body = `${r.match ? `${r.match} ` : ''}counter ${r.action}`
      for (const comment of annotate?.(r) ?? []) out.push(`# ${comment}`)
      // nft cannot insert at or past the end of a chain; there an insert is an append.
      if (r.index !== undefined && r.index < count) {
        out.push(`insert rule inet ${table} ${r.chain} index ${r.index} ${body}`)
      } else {
        out.push(`add rule inet ${table} ${r.chain} ${body}`)
      }
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : ''
}
