// Applies a Plan to the kernel after verifying what is there, the way istio-iptables does: nothing
// there -> apply; present and equal -> nothing to do; present and different -> reconcile or fail with
// what differs. Together with verify.ts, cleanup.ts and routing.ts, the only code in src/iptables that
// runs programs; a failed apply is rolled back so nothing of the plan remains.
import { RulesDifferError } from '../errors.js'
import type { Logger } from '../logger.js'
import { cleanupAt } from './cleanup.js'
import type { Plan } from './plan.js'
import { setupRouting } from './routing.js'
import { familyTools, requireBinaries, requirePrivileges, resolveTarget, restoreAt, runAt, type Target } from './target.js'
import { verifyAt, type VerifyResult } from './verify.js'

export type { VerifyResult } from './verify.js'

export interface ApplyOptions {
  /** namespace name (in /run/netns) or path (e.g. /var/run/netns/x); unset = the current namespace */
  netns?: string | undefined
  /** present and different: clean up and re-apply instead of failing */
  reconcile?: boolean
  /** apply without checking what is there */
  forceApply?: boolean
  logger: Logger
}

export type ApplyOutcome = 'applied' | 'unchanged' | 'reconciled'

function programsFor(plan: Plan): string[] {
  const programs: string[] = []
  if (plan.backend === 'nftables') programs.push('nft')
  else {
    if (plan.ipv4.trim()) programs.push(...Object.values(familyTools.ipv4))
    if (plan.ipv6.trim()) programs.push(...Object.values(familyTools.ipv6))
  }
  if (plan.tproxy) programs.push('ip')
  return programs
}

/** Checks that can fail before anything changes: namespace, programs, privileges. */
function prepare(plan: Plan, netns: string | undefined): Target {
  const target = resolveTarget(netns)
  requireBinaries([...(target.nsPath ? ['nsenter'] : []), ...programsFor(plan)])
  requirePrivileges(target)
  return target
}

async function install(target: Target, plan: Plan, logger: Logger): Promise<void> {
  try {
    if (plan.backend === 'nftables') {
      if (plan.nft.trim()) await runAt(target, 'nft', ['-f', '-'], { input: plan.nft })
    } else {
      if (plan.ipv4.trim()) await restoreAt(target, 'ipv4', plan.ipv4)
      if (plan.ipv6.trim()) await restoreAt(target, 'ipv6', plan.ipv6)
    }
    if (plan.tproxy) await setupRouting(target, plan.tproxy)
  } catch (err) {
    logger.error({ err, target: target.label }, 'apply failed; removing what was applied')
    try {
      await cleanupAt(target, plan, logger)
    } catch (rollbackErr) {
      logger.error({ err: rollbackErr }, 'rollback failed; rules of the plan may remain')
    }
    throw err
  }
}

function differMessage(target: Target, result: VerifyResult): string {
  return (
    `the rules in ${target.label} differ from the plan (rerun with --reconcile to replace them):\n` +
    result.delta.map((d) => `  ${d}`).join('\n')
  )
}

export async function applyPlan(plan: Plan, options: ApplyOptions): Promise<ApplyOutcome> {
  const { logger } = options
  const target = prepare(plan, options.netns)
  if (!options.forceApply) {
    const state = await verifyAt(target, plan, false)
    if (state.residue && state.delta.length === 0) {
      if (plan.tproxy && (await setupRouting(target, plan.tproxy))) logger.info('TPROXY routing restored')
      // debug: the command prints the outcome on stdout already
      logger.debug({ target: target.label }, 'rules already in place; nothing to do')
      return 'unchanged'
    }
    if (state.residue) {
      if (!options.reconcile) throw new RulesDifferError(differMessage(target, state))
      logger.info({ target: target.label, delta: state.delta }, 'rules differ; cleaning up and re-applying')
      await cleanupAt(target, plan, logger)
      await install(target, plan, logger)
      return 'reconciled'
    }
  }
  await install(target, plan, logger)
  logger.debug({ target: target.label, backend: plan.backend }, 'rules applied')
  return 'applied'
}

/** Where the rules stand: residue (something of the plan is there) and how it differs from the plan. */
export async function verifyPlan(plan: Plan, options: { netns?: string | undefined }): Promise<VerifyResult> {
  return verifyAt(prepare(plan, options.netns), plan)
}

/** Removes what the plan adds (and TPROXY routing); nothing there is a no-op success. */
export async function cleanupPlan(plan: Plan, options: { netns?: string | undefined; logger: Logger }): Promise<void> {
  const target = prepare(plan, options.netns)
  await cleanupAt(target, plan, options.logger)
  options.logger.debug({ target: target.label }, 'rules removed')
}
