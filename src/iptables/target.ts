// Where apply, verify and cleanup run their programs: the current network namespace or one named by
// name (/run/netns/<name>) or by path (Istio's --network-namespace takes /var/run/netns/<name>).
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { MissingBinaryError, NetnsNotFoundError, PermissionError } from '../errors.js'
import { run, type RunOptions, type RunResult } from '../sys/exec.js'
import { netnsPath } from '../sys/netns.js'

export interface Target {
  /** path of the namespace file, or undefined for the current namespace */
  nsPath?: string
  /** for messages and logs */
  label: string
}

export function resolveTarget(netns?: string): Target {
  if (!netns) return { label: 'the current network namespace' }
  const nsPath = netns.includes('/') ? netns : netnsPath(netns)
  if (!existsSync(nsPath)) throw new NetnsNotFoundError(netns)
  return { nsPath, label: `network namespace '${netns}'` }
}

/** Runs a program in the target namespace; nsenter enters only the network namespace, so PATH is ours. */
export function runAt(target: Target, program: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  if (!target.nsPath) return run(program, args, options)
  const describe = `${program} ${args.join(' ')} (in ${target.label})`
  return run('nsenter', [`--net=${target.nsPath}`, '--', program, ...args], { describe, ...options })
}

export type Family = 'ipv4' | 'ipv6'

export const familyTools = {
  ipv4: { restore: 'iptables-restore', save: 'iptables-save', cmd: 'iptables' },
  ipv6: { restore: 'ip6tables-restore', save: 'ip6tables-save', cmd: 'ip6tables' },
} as const

/**
 * iptables-restore --noflush: adds to what is there instead of replacing whole tables. --wait because
 * iptables-legacy takes the xtables lock and fails at once when another program holds it.
 */
export function restoreAt(target: Target, family: Family, input: string): Promise<RunResult> {
  return runAt(target, familyTools[family].restore, ['--noflush', '--wait'], { input })
}

const installHints: Record<string, string> = {
  nsenter: 'install util-linux (apt-get install util-linux)',
  unshare: 'install util-linux (apt-get install util-linux)',
  ip: 'install iproute2 (apt-get install iproute2)',
  nft: 'install nftables (apt-get install nftables)',
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir || '.', program), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** Fails before anything changes when a program that apply or cleanup will need is missing. */
export function requireBinaries(programs: string[]): void {
  for (const program of programs) {
    if (!onPath(program)) {
      throw new MissingBinaryError(program, installHints[program] ?? 'install iptables (apt-get install iptables)')
    }
  }
}

const CAP_NET_ADMIN = 12n
const CAP_SYS_ADMIN = 21n

function effectiveCaps(): bigint | null {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? BigInt(`0x${m[1]}`) : null
  } catch {
    return null
  }
}

/**
 * Fails before anything changes without CAP_NET_ADMIN (and CAP_SYS_ADMIN to enter another namespace),
 * so the user reads one clear message instead of whichever program happened to fail first.
 */
export function requirePrivileges(target: Target): void {
  const caps = effectiveCaps()
  if (caps === null) return
  const missing: string[] = []
  if (!((caps >> CAP_NET_ADMIN) & 1n)) missing.push('CAP_NET_ADMIN')
  if (target.nsPath && !((caps >> CAP_SYS_ADMIN) & 1n)) missing.push('CAP_SYS_ADMIN (to enter the namespace)')
  if (missing.length === 0) return
  const uid = process.getuid?.() ?? -1
  throw new PermissionError(
    `changing the rules of ${target.label} needs root or CAP_NET_ADMIN: running as uid ${uid} without ${missing.join(' and ')}`,
  )
}
