// Reads the two texts apply works with: iptables-restore input (the plan) and iptables-save output (the
// kernel's state), plus the table names of an nft script. Pure; no programs run here.

export const builtinChains = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'])

/** The chains this project (and Istio) owns; cleanup removes every one of them. */
export const isOwnedChain = (chain: string): boolean => chain.startsWith('ISTIO_')

export interface PlannedRule {
  table: string
  chain: string
  /** the rule's match and target, without `-A CHAIN` / `-I CHAIN N`, unquoted */
  spec: string[]
  /** the spec as written in the plan, quotes kept, for restore input */
  specText: string
}

export interface PlannedTable {
  name: string
  /** chains the plan creates (`-N X` or `:X - [0:0]`) */
  chains: string[]
  rules: PlannedRule[]
}

/** Splits a rule line like a shell would for iptables: whitespace-separated, double or single quotes. */
export function tokenize(line: string): string[] {
  const tokens: string[] = []
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g
  for (const m of line.matchAll(re)) tokens.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]!))
  return tokens
}

/** Splits `-A CHAIN rest` or `-I CHAIN [N] rest` into chain and the rest, as text and as tokens. */
function parseRuleLine(line: string): { chain: string; specText: string } | null {
  const m = /^-([AI])\s+(\S+)(.*)$/.exec(line)
  if (!m) return null
  const rest = m[3]!.trim()
  return { chain: m[2]!, specText: m[1] === 'I' ? rest.replace(/^\d+\s*/, '') : rest }
}

export function parseRestore(text: string): PlannedTable[] {
  const tables: PlannedTable[] = []
  let current: PlannedTable | null = null
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      const name = line.slice(1).trim()
      current = tables.find((t) => t.name === name) ?? null
      if (!current) tables.push((current = { name, chains: [], rules: [] }))
      continue
    }
    if (!current || line === 'COMMIT') continue
    const declared = /^-N\s+(\S+)$/.exec(line) ?? /^:(\S+)\s+-\s/.exec(line)
    if (declared) {
      if (!current.chains.includes(declared[1]!)) current.chains.push(declared[1]!)
      continue
    }
    const rule = parseRuleLine(line)
    if (rule) current.rules.push({ table: current.name, ...rule, spec: tokenize(rule.specText) })
  }
  return tables
}

export interface SavedTable {
  chains: Set<string>
  /** rule lines per chain, as iptables-save prints them (`-A CHAIN ...`) */
  rules: Map<string, string[]>
}

export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>()
  let current: SavedTable | undefined
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Set(), rules: new Map() }
      tables.set(line.slice(1).trim(), current)
    } else if (current && line.startsWith(':')) {
      current.chains.add(line.slice(1).split(/\s/)[0]!)
    } else if (current && line.startsWith('-A ')) {
      const chain = line.split(/\s+/)[1]!
      current.rules.set(chain, [...(current.rules.get(chain) ?? []), line])
    }
  }
  return tables
}

export interface NftTableRef {
  family: string
  name: string
}

/** The tables an nft script creates (`add table inet istio-proxy-nat`, or `table inet x {`). */
export function nftTables(script: string): NftTableRef[] {
  const refs: NftTableRef[] = []
  for (const m of script.matchAll(/^\s*(?:add\s+|create\s+)?table\s+(\S+)\s+(\S+?)(?:\s*\{.*)?\s*$/gm)) {
    if (!refs.some((r) => r.family === m[1] && r.name === m[2])) refs.push({ family: m[1]!, name: m[2]! })
  }
  return refs
}

/** `nft list table` output as chain -> lines (hook line included), counters zeroed so states compare. */
export function parseNftListing(text: string): Map<string, string[]> {
  const chains = new Map<string, string[]>()
  let current: string[] | undefined
  for (const raw of text.split('\n')) {
    const line = raw
      .trim()
      .replace(/counter packets \d+ bytes \d+/g, 'counter')
      .replace(/\s+# handle \d+$/, '')
    const head = /^chain (\S+) \{$/.exec(line)
    if (head) chains.set(head[1]!, (current = []))
    else if (line === '}') current = undefined
    else if (current && line) current.push(line)
  }
  return chains
}

/** Rules per chain that an nft script puts in one table, from its `add chain` / `add rule` / `insert rule`. */
export function nftScriptShape(script: string, table: NftTableRef): Map<string, number> {
  const shape = new Map<string, number>()
  const prefix = `${table.family}\\s+${table.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+(\\S+)`
  for (const m of script.matchAll(new RegExp(`^\\s*add\\s+chain\\s+${prefix}`, 'gm'))) shape.set(m[1]!, shape.get(m[1]!) ?? 0)
  for (const m of script.matchAll(new RegExp(`^\\s*(?:add|insert)\\s+rule\\s+${prefix}`, 'gm'))) {
    shape.set(m[1]!, (shape.get(m[1]!) ?? 0) + 1)
  }
  return shape
}
