// Removes what a plan installs, as istio-iptables --cleanup-only does: the plan's rules in built-in
// chains deleted in reverse order, then every ISTIO_* chain flushed and deleted; for nftables the plan's
// tables. Each step is one iptables-restore transaction, so none stops half-way.
import type { Logger } from '../logger.js'
import type { Plan } from './plan.js'
import { builtinChains, isOwnedChain, nftTables, parseRestore, type PlannedRule, type PlannedTable } from './restore-text.js'
import { removalCommands, removeRouting } from './routing.js'
import { restoreAt, runAt, type Family, type Target } from './target.js'
import { presentNftTables, readSave, ruleExists } from './verify.js'

function restoreBlock(table: string, lines: string[]): string[] {
  return lines.length ? [`*${table}`, ...lines, 'COMMIT'] : []
}

/** The plan's rules in built-in chains, last first: the order cleanup deletes them in. */
function builtinRulesLastFirst(table: PlannedTable): PlannedRule[] {
  return [...table.rules].reverse().filter((r) => builtinChains.has(r.chain))
}

const deleteLine = (rule: PlannedRule) => `-D ${rule.chain} ${rule.specText}`
const flushAndDelete = (chains: string[]) => [...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`)]

/** Deletes of the plan's rules in built-in chains that are present, last first; '' when none are. */
async function plannedDeletes(target: Target, family: Family, text: string): Promise<string> {
  const blocks: string[] = []
  for (const table of parseRestore(text)) {
    const lines: string[] = []
    for (const rule of builtinRulesLastFirst(table)) {
      if (await ruleExists(target, family, rule)) lines.push(deleteLine(rule))
    }
    blocks.push(...restoreBlock(table.name, lines))
  }
  return blocks.length ? blocks.join('\n') + '\n' : ''
}

/**
 * Flush and delete of every ISTIO_* chain, with any jump to one left in a built-in chain (a plan of
 * another layout put it there) deleted first, since a referenced chain cannot be deleted.
 */
async function chainDeletes(target: Target, family: Family): Promise<string> {
  const blocks: string[] = []
  for (const [name, table] of await readSave(target, family)) {
    const jumps = [...table.rules]
      .filter(([chain]) => builtinChains.has(chain))
      .flatMap(([, lines]) => lines.filter((l) => /\s-[jg]\s+ISTIO_\S+/.test(l)))
      .map((l) => l.replace(/^-A /, '-D '))
    const owned = [...table.chains].filter(isOwnedChain)
    blocks.push(...restoreBlock(name, [...jumps, ...flushAndDelete(owned)]))
  }
  return blocks.length ? blocks.join('\n') + '\n' : ''
}

async function cleanupFamily(target: Target, family: Family, text: string, logger: Logger): Promise<void> {
  // A rule applied twice (forceApply) sits twice in a built-in chain; -D removes one copy per pass.
  for (let pass = 0; pass < 8; pass++) {
    const deletes = await plannedDeletes(target, family, text)
    if (!deletes) break
    logger.debug({ family, deletes }, 'deleting planned rules')
    await restoreAt(target, family, deletes)
  }
  const chains = await chainDeletes(target, family)
  if (chains) {
    logger.debug({ family, chains }, 'deleting ISTIO_* chains')
    await restoreAt(target, family, chains)
  }
}

async function cleanupNft(target: Target, script: string, logger: Logger): Promise<void> {
  const present = await presentNftTables(target, script)
  if (present.length === 0) return
  logger.debug({ tables: present.map((t) => t.name) }, 'deleting nft tables')
  await runAt(target, 'nft', ['-f', '-'], {
    input: present.map((t) => `delete table ${t.family} ${t.name}`).join('\n') + '\n',
  })
}

export async function cleanupAt(target: Target, plan: Plan, logger: Logger): Promise<void> {
  if (plan.backend === 'nftables') {
    await cleanupNft(target, plan.nft, logger)
  } else {
    if (plan.ipv4.trim()) await cleanupFamily(target, 'ipv4', plan.ipv4, logger)
    if (plan.ipv6.trim()) await cleanupFamily(target, 'ipv6', plan.ipv6, logger)
  }
  if (plan.tproxy) await removeRouting(target, plan.tproxy)
}

/**
 * What `--cleanup-only --dry-run` prints, read from the plan alone (no kernel state, so no privileges): per
 * family the restore input that deletes the plan's rules in built-in chains, last first, then flushes and
 * deletes the plan's ISTIO_* chains; for nftables the plan's tables; then TPROXY's routing, as comments. A live
 * cleanup deletes only what is present, and also any other ISTIO_* chain it finds.
 */
export function cleanupText(plan: Plan): string {
  const out: string[] = []
  if (plan.backend === 'nftables') {
    out.push(...nftTables(plan.nft).map((t) => `delete table ${t.family} ${t.name}`))
  } else {
    for (const [family, text] of [
      ['iptables-restore --noflush', plan.ipv4],
      ['ip6tables-restore --noflush', plan.ipv6],
    ] as const) {
      if (!text.trim()) continue
      out.push(`# ${family}`)
      for (const table of parseRestore(text)) {
        out.push(
          ...restoreBlock(table.name, [
            ...builtinRulesLastFirst(table).map(deleteLine),
            ...flushAndDelete(table.chains.filter(isOwnedChain)),
          ]),
        )
      }
    }
  }
  if (plan.tproxy) out.push(...removalCommands(plan.tproxy).map((c) => `# ${c}`))
  return out.length ? out.join('\n') + '\n' : ''
}
