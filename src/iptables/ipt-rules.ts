// Records iptables rules per family in the order the builder adds them, and renders them as
// iptables-restore input the way istio-iptables does: tables in alphabetical order, a `-N` for every
// non-built-in chain (first the chains that hold rules, in order of first use, then chains only jumped
// to), then the rules in the order they were added.
import type { NoteId } from './explain.js'

export type Table = 'filter' | 'mangle' | 'nat' | 'raw'

/** N: what --explain annotates a rule with (the sidecar builder's NoteId, or another builder's own ids). */
export interface IptRule<N extends string = NoteId> {
  table: Table
  chain: string
  /** the whole rule as restore input takes it: `-A CHAIN ...` or `-I CHAIN N ...` */
  params: string[]
  /** why the rule exists (rendered by --explain) */
  note: N
}

/** Marks the argument that differs between the IPv4 and the IPv6 variant of a rule. */
export const VERSIONED = '\u0000versioned'

const builtInChains = new Set(['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING'])

export class IptRuleSet<N extends string = NoteId> {
  readonly v4: IptRule<N>[] = []
  readonly v6: IptRule<N>[] = []
  #ipv6: boolean

  constructor(ipv6: boolean) {
    this.#ipv6 = ipv6
  }

  append(note: N, table: Table, chain: string, ...params: string[]): void {
    this.appendV4(note, table, chain, ...params)
    this.appendV6(note, table, chain, ...params)
  }

  appendV4(note: N, table: Table, chain: string, ...params: string[]): void {
    this.v4.push({ table, chain, params: ['-A', chain, ...params], note })
  }

  appendV6(note: N, table: Table, chain: string, ...params: string[]): void {
    if (this.#ipv6) this.v6.push({ table, chain, params: ['-A', chain, ...params], note })
  }

  /** Appends to both families, with VERSIONED replaced by `v4` or `v6`. */
  appendVersioned(note: N, v4: string, v6: string, table: Table, chain: string, ...params: string[]): void {
    this.appendV4(note, table, chain, ...params.map((p) => (p === VERSIONED ? v4 : p)))
    this.appendV6(note, table, chain, ...params.map((p) => (p === VERSIONED ? v6 : p)))
  }

  insert(note: N, table: Table, chain: string, position: number, ...params: string[]): void {
    this.insertV4(note, table, chain, position, ...params)
    this.insertV6(note, table, chain, position, ...params)
  }

  insertV4(note: N, table: Table, chain: string, position: number, ...params: string[]): void {
    this.v4.push({ table, chain, params: ['-I', chain, String(position), ...params], note })
  }

  insertV6(note: N, table: Table, chain: string, position: number, ...params: string[]): void {
    if (this.#ipv6) this.v6.push({ table, chain, params: ['-I', chain, String(position), ...params], note })
  }
}

/** Comment lines for a rule, or none. */
export type Annotate<N extends string = NoteId> = (rule: IptRule<N>) => string[]

export function renderRestore<N extends string>(rules: readonly IptRule<N>[], annotate?: Annotate<N>): string {
  const byTable = new Map<Table, string[]>()
  const lines = (table: Table): string[] => {
    let list = byTable.get(table)
    if (!list) byTable.set(table, (list = []))
    return list
  }
  const declared = new Set<string>()
  const declare = (table: Table, chain: string) => {
    const key = `${chain}:${table}`
    if (declared.has(key)) return
    declared.add(key)
    if (!builtInChains.has(chain)) lines(table).push(`-N ${chain}`)
  }
  for (const r of rules) declare(r.table, r.chain)
  for (const r of rules) {
    const target = r.params.at(-2) === '-j' ? r.params.at(-1) : undefined
    if (target && /^ISTIO_/.test(target)) declare(r.table, target)
  }
  for (const r of rules) {
    const list = lines(r.table)
    for (const comment of annotate?.(r) ?? []) list.push(`# ${comment}`)
    list.push(r.params.join(' '))
  }
  let out = ''
  for (const table of [...byTable.keys()].sort()) {
    out += `* ${table}\n${lines(table).join('\n')}\nCOMMIT\n`
  }
  return out
}
