// Compares what a plan would install with what the kernel holds, the way istio-iptables verifies:
// tables and chains exist, each ISTIO_* chain holds as many rules as planned, no extra ISTIO_* chains,
// and every planned rule passes `iptables -C` (which sidesteps the normalized form iptables-save prints).
// One check more than Istio: when all that passes, the order of the rules, against the plan's own listing.
import { MissingBinaryError, PermissionError } from '../errors.js'
import { run } from '../sys/exec.js'
import type { Plan } from './plan.js'
import {
  builtinChains,
  isOwnedChain,
  nftScriptShape,
  nftTables,
  parseNftListing,
  parseRestore,
  parseSave,
  type NftTableRef,
  type PlannedRule,
  type SavedTable,
} from './restore-text.js'
import { routingDelta } from './routing.js'
import { familyTools, runAt, type Family, type Target } from './target.js'

export interface VerifyResult {
  /** some of the plan's chains, rules or tables are present */
  residue: boolean
  /** how the present state differs from the plan, one line each; empty when equal */
  delta: string[]
}

export async function ruleExists(target: Target, family: Family, rule: PlannedRule): Promise<boolean> {
  const args = ['--wait', '-t', rule.table, '-C', rule.chain, ...rule.spec]
  const result = await runAt(target, familyTools[family].cmd, args, { allowFailure: true })
  if (result.code === 0) return true
  if (/permission denied|must be root/i.test(result.stderr)) {
    // Let run() raise its PermissionError with the program's own words.
    await runAt(target, familyTools[family].cmd, args)
  }
  return false
}

export async function readSave(target: Target, family: Family): Promise<Map<string, SavedTable>> {
  return parseSave((await runAt(target, familyTools[family].save, [])).stdout)
}

/** Present ISTIO_* rules a planned rule does not account for, matched by shared words; for messages only. */
function unmatched(present: string[], planned: PlannedRule[]): string[] {
  const left = present.map((line) => ({ line, words: new Set(line.split(/\s+/).slice(2)) }))
  for (const rule of planned) {
    let best = -1
    let bestScore = -1
    left.forEach((p, i) => {
      const shared = rule.spec.filter((w) => p.words.has(w)).length
      const score = shared / (p.words.size + rule.spec.length - shared || 1)
      if (score > bestScore) [best, bestScore] = [i, score]
    })
    if (best >= 0) left.splice(best, 1)
  }
  return left.map((p) => p.line)
}

async function verifyFamily(target: Target, family: Family, text: string, out: VerifyResult): Promise<void> {
  const saved = await readSave(target, family)
  const before = out.delta.length
  for (const table of parseRestore(text)) {
    const where = `${family} ${table.name}`
    const present = saved.get(table.name)
    if (!present) {
      out.delta.push(`${where}: table missing`)
      continue
    }
    for (const chain of table.chains) {
      if (!present.chains.has(chain)) {
        out.delta.push(`${where}: chain ${chain} missing`)
        continue
      }
      out.residue = true
      const planned = table.rules.filter((r) => r.chain === chain)
      const lines = present.rules.get(chain) ?? []
      if (lines.length !== planned.length) {
        out.delta.push(`${where}: chain ${chain} holds ${lines.length} rules, the plan has ${planned.length}`)
        if (lines.length > planned.length) {
          for (const extra of unmatched(lines, planned)) out.delta.push(`${where}: extra rule ${extra}`)
        }
      }
    }
    for (const chain of present.chains) {
      if (isOwnedChain(chain) && !table.chains.includes(chain)) {
        out.residue = true
        out.delta.push(`${where}: extra chain ${chain}`)
      }
    }
    for (const rule of table.rules) {
      const chainThere = builtinChains.has(rule.chain) || present.chains.has(rule.chain)
      if (chainThere && (await ruleExists(target, family, rule))) {
        if (builtinChains.has(rule.chain)) out.residue = true
      } else if (chainThere) {
        out.delta.push(`${where}: missing rule -A ${rule.chain} ${rule.specText}`)
      }
    }
  }
  if (out.residue && out.delta.length === before) out.delta.push(...(await orderDelta(family, text, saved)))
}

/**
 * How iptables-save or nft itself prints the plan: the plan loaded into a throwaway network namespace
 * and listed back, so the comparison is between two listings of the same program and version. null
 * with CAP_NET_ADMIN alone (an init container's grant), which cannot create a namespace, or no unshare.
 */
async function scratchListing(input: string, load: string, list: string): Promise<string | null> {
  try {
    return (await run('unshare', ['--net', '--', 'sh', '-c', `${load} && ${list}`], { input })).stdout
  } catch (err) {
    if (err instanceof PermissionError || err instanceof MissingBinaryError) return null
    throw err
  }
}

function isSubsequence(wanted: string[], lines: string[]): boolean {
  let i = 0
  for (const line of lines) if (line === wanted[i]) i++
  return i === wanted.length
}

/**
 * Istio's checks pass when every rule is there but in another order, which changes what the rules do;
 * the plan's own listing catches that. Built-in chains may hold others' rules between the plan's.
 */
async function orderDelta(family: Family, text: string, saved: Map<string, SavedTable>): Promise<string[]> {
  const { restore, save } = familyTools[family]
  const listing = await scratchListing(text, `${restore} --noflush --wait`, save)
  if (listing === null) return []
  const delta: string[] = []
  for (const [name, want] of parseSave(listing)) {
    for (const [chain, lines] of want.rules) {
      const got = saved.get(name)?.rules.get(chain) ?? []
      const same = builtinChains.has(chain) ? isSubsequence(lines, got) : lines.join('\n') === got.join('\n')
      if (!same) delta.push(`${family} ${name}: chain ${chain} holds the planned rules in another order`)
    }
  }
  return delta
}

/** Without nft's own rendering of the plan: the same chains, each with as many rules as planned. */
function compareShape(where: string, want: Map<string, number>, have: Map<string, string[]>, out: string[]) {
  for (const [chain, count] of want) {
    const got = have.get(chain)?.filter((l) => !/^type \S+ hook /.test(l))
    if (!got) out.push(`${where}: chain ${chain} missing`)
    else if (got.length !== count) out.push(`${where}: chain ${chain} holds ${got.length} rules, the plan has ${count}`)
  }
  for (const chain of have.keys()) if (!want.has(chain)) out.push(`${where}: extra chain ${chain}`)
}

function compareChains(where: string, want: Map<string, string[]>, have: Map<string, string[]>, out: string[]) {
  for (const [chain, lines] of want) {
    const got = have.get(chain)
    if (!got) {
      out.push(`${where}: chain ${chain} missing`)
      continue
    }
    const missing = lines.filter((l) => !got.includes(l))
    const extra = got.filter((l) => !lines.includes(l))
    for (const l of missing) out.push(`${where}: chain ${chain} missing rule: ${l}`)
    for (const l of extra) out.push(`${where}: chain ${chain} extra rule: ${l}`)
    if (!missing.length && !extra.length && lines.join('\n') !== got.join('\n')) {
      out.push(`${where}: chain ${chain} holds the planned rules in another order or count`)
    }
  }
  for (const chain of have.keys()) if (!want.has(chain)) out.push(`${where}: extra chain ${chain}`)
}

/** The plan's nft tables that exist in the target. */
export async function presentNftTables(target: Target, script: string): Promise<NftTableRef[]> {
  const listed = (await runAt(target, 'nft', ['list', 'tables'])).stdout.split('\n')
  return nftTables(script).filter((t) => listed.includes(`table ${t.family} ${t.name}`))
}

async function verifyNft(target: Target, script: string, out: VerifyResult): Promise<void> {
  const tables = nftTables(script)
  const present = await presentNftTables(target, script)
  out.residue ||= present.length > 0
  if (present.length === 0) {
    out.delta.push(...tables.map((t) => `nft: table ${t.family} ${t.name} missing`))
    return
  }
  const expected = await scratchListing(script, 'nft -f -', 'nft list ruleset')
  for (const t of tables) {
    const where = `nft ${t.family} ${t.name}`
    if (!present.some((p) => p.family === t.family && p.name === t.name)) {
      out.delta.push(`${where}: table missing`)
      continue
    }
    const have = parseNftListing((await runAt(target, 'nft', ['list', 'table', t.family, t.name])).stdout)
    if (expected === null) {
      compareShape(where, nftScriptShape(script, t), have, out.delta)
      continue
    }
    const wantText = new RegExp(`^table ${t.family} ${t.name} \\{\\n[\\s\\S]*?^\\}$`, 'm').exec(expected)?.[0] ?? ''
    compareChains(where, parseNftListing(wantText), have, out.delta)
  }
}

/** Rules (and, with routing, TPROXY's policy routing) of the plan against the target's state. */
export async function verifyAt(target: Target, plan: Plan, routing = true): Promise<VerifyResult> {
  const out: VerifyResult = { residue: false, delta: [] }
  if (plan.backend === 'nftables') {
    await verifyNft(target, plan.nft, out)
  } else {
    if (plan.ipv4.trim()) await verifyFamily(target, 'ipv4', plan.ipv4, out)
    if (plan.ipv6.trim()) await verifyFamily(target, 'ipv6', plan.ipv6, out)
  }
  if (routing && plan.tproxy) out.delta.push(...(await routingDelta(target, plan.tproxy)))
  return out
}
