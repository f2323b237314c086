// Shared by the iptables integration tests: a throwaway namespace per test, Istio's golden outputs as
// plans (until the builder's own plans are used), and the kernel state read back for comparison.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { run } from '../../src/sys/exec.js'
import { addNetns, deleteNetns, execIn } from '../../src/sys/netns.js'
import type { Plan, TproxyRouting } from '../../src/iptables/plan.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A fresh namespace (lo up) named slt-ipt-<random>, removed when the test ends, passed or failed. */
export async function scratchNetns(t: Teardown): Promise<string> {
  const name = `slt-ipt-${randomBytes(4).toString('hex')}`
  t.teardown(() => deleteNetns(name))
  await addNetns(name)
  return name
}

const fixtures = fileURLToPath(new URL('../fixtures/apply/', import.meta.url))

/**
 * An istio-iptables golden as restore input: the builder's `iptables-save` state-check lines dropped,
 * split into the IPv4 block and the IPv6 block, which starts where a table name comes round again.
 */
export function splitGolden(text: string): { ipv4: string; ipv6: string } {
  const lines = text.split('\n').filter((l) => l && !/^ip6?tables-save$/.test(l))
  const seen = new Set<string>()
  let cut = lines.length
  lines.forEach((line, i) => {
    if (!line.startsWith('*') || cut < lines.length) return
    const table = line.slice(1).trim()
    if (seen.has(table)) cut = i
    seen.add(table)
  })
  const block = (part: string[]) => (part.length ? part.join('\n') + '\n' : '')
  return { ipv4: block(lines.slice(0, cut)), ipv6: block(lines.slice(cut)) }
}

export function iptablesPlan(golden: string, tproxy: TproxyRouting | null = null): Plan {
  const { ipv4, ipv6 } = splitGolden(readFileSync(`${fixtures}iptables-${golden}.golden`, 'utf8'))
  return { backend: 'iptables', ipv4, ipv6, nft: '', tproxy }
}

export function nftPlan(golden: string, tproxy: TproxyRouting | null = null): Plan {
  const nft = readFileSync(`${fixtures}nft-${golden}.golden`, 'utf8')
    .split('\n')
    .filter((l) => !/^ip6?tables-save$/.test(l))
    .join('\n')
  return { backend: 'nftables', ipv4: '', ipv6: '', nft, tproxy }
}

export async function inNs(ns: string, argv: string[]): Promise<string> {
  return (await execIn(ns, argv)).stdout
}

/** iptables-save text without its timestamped comments and packet counters. */
export async function saved(ns: string, program = 'iptables-save'): Promise<string> {
  return (await inNs(ns, [program]))
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
    .join('\n')
}

/** The rules and user chains of a save, without the built-in chains' policy lines: what a plan adds. */
export function rulesOnly(save: string): string {
  return save
    .split('\n')
    .filter((l) => l.startsWith('-') || (l.startsWith(':') && !/^:[A-Z]+ ACCEPT/.test(l)))
    .join('\n')
}

/** A save split into its tables' sections, `*table` to COMMIT. */
export function tableSections(save: string): Map<string, string> {
  const sections = new Map<string, string>()
  for (const m of save.matchAll(/^\*(\S+)\n[\s\S]*?^COMMIT$/gm)) sections.set(m[1]!, m[0])
  return sections
}

/** Everything the kernel holds for the tests to compare: both iptables families and nftables. */
export async function kernelState(ns: string): Promise<{ v4: string; v6: string; nft: string }> {
  return {
    v4: await saved(ns, 'iptables-save'),
    v6: await saved(ns, 'ip6tables-save'),
    nft: (await inNs(ns, ['nft', 'list', 'ruleset'])).replace(/counter packets \d+ bytes \d+/g, 'counter'),
  }
}

export async function ipRules(ns: string, family: '-4' | '-6'): Promise<string> {
  return (await run('ip', ['-n', ns, family, 'rule', 'show'])).stdout
}
