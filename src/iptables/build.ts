// Configuration in, Plan (or its dry-run text) out. The command and the conformance tests both render
// through renderDryRun, so what the tests check is what `--dry-run` prints.
import { InvalidFlagError } from '../errors.js'
import type { Compat, RuleConfig } from './config.js'
import { buildIptablesRules } from './build-iptables.js'
import { buildNftRules } from './build-nftables.js'
import { annotator } from './explain.js'
import { renderRestore } from './ipt-rules.js'
import { buildLegacyRules } from './legacy.js'
import { renderNft } from './nft-rules.js'
import type { Plan } from './plan.js'

export interface BuildOptions {
  nativeNftables?: boolean
  compat?: Compat
  /** a `#` comment above every rule (--explain) */
  explain?: boolean
}

export function buildPlan(c: RuleConfig, options: BuildOptions = {}): Plan {
  const annotate = options.explain ? annotator(c) : undefined
  const tproxy =
    c.inboundInterceptionMode === 'TPROXY' ? { mark: c.inboundTProxyMark, table: c.inboundTProxyRouteTable, ipv6: c.enableIPv6 } : null
  if (options.nativeNftables) {
    if (options.compat === 'legacy') {
      throw new InvalidFlagError('--compat legacy describes iptables rules; it cannot be combined with --native-nftables')
    }
    return { backend: 'nftables', ipv4: '', ipv6: '', nft: renderNft(buildNftRules(c).rules, annotate), tproxy }
  }
  const rules = options.compat === 'legacy' ? buildLegacyRules(c) : buildIptablesRules(c)
  return {
    backend: 'iptables',
    ipv4: renderRestore(rules.v4, annotate),
    ipv6: renderRestore(rules.v6, annotate),
    nft: '',
    tproxy,
  }
}

/** What `--dry-run` prints: the restore input for IPv4 then IPv6, or the nft script. */
export function renderDryRun(c: RuleConfig, options: BuildOptions = {}): string {
  return planText(buildPlan(c, options))
}

export function planText(plan: Plan): string {
  return plan.backend === 'nftables' ? plan.nft : plan.ipv4 + plan.ipv6
}
