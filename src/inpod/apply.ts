// Applies an in-pod plan to a namespace and removes it again. The rules go through the iptables command's
// apply / verify / cleanup (src/iptables/apply.ts: ISTIO_* chains, or the plan's nft tables); the policy
// routing is set up here, idempotently, as istio-cni does over netlink (route replaced, rule added once).
// The node's probe rules are not applied: they match istio-cni's probe sets, which only istio-cni fills.
import { InvalidFlagError } from '../errors.js'
import { applyPlan, cleanupPlan } from '../iptables/apply.js'
import type { ApplyOutcome } from '../iptables/apply.js'
import type { Plan } from '../iptables/plan.js'
import { requireBinaries, resolveTarget, runAt, type Target } from '../iptables/target.js'
import type { Logger } from '../logger.js'
import type { InpodPlan } from './build.js'
import { INPOD_TPROXY_MARK, INPOD_TPROXY_MASK, ROUTE_RULE_PRIORITY, ROUTE_TABLE, hex } from './config.js'

export interface InpodApplyOptions {
  netns?: string | undefined
  logger: Logger
}

function rulePlan(plan: InpodPlan): Plan {
  if (plan.mode !== 'pod') {
    throw new InvalidFlagError("--host rules can only be printed (--dry-run): they match istio-cni's probe sets, which it alone fills")
  }
  return { backend: plan.backend, ipv4: plan.ipv4, ipv6: plan.ipv6, nft: plan.nft, tproxy: null }
}

const families = (plan: InpodPlan) => plan.routing?.families ?? []
const ruleArgs = ['fwmark', `${hex(INPOD_TPROXY_MARK)}/${hex(INPOD_TPROXY_MASK)}`, 'lookup', String(ROUTE_TABLE)]
const routeArgs = (family: string) => ['local', family === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', String(ROUTE_TABLE)]

async function hasRule(target: Target, family: string): Promise<boolean> {
  const shown = await runAt(target, 'ip', [family, 'rule', 'show', 'pref', String(ROUTE_RULE_PRIORITY)])
  return shown.stdout.includes(`fwmark ${ruleArgs[1]} lookup ${ROUTE_TABLE}`)
}

/**
 * Routes first, then the rule, in istio-cni's order. Rules go in whole (a repeated run reconciles them, as
 * the node agent re-applies a pod's rules); returns the outcome of the rules.
 */
export async function applyInpod(plan: InpodPlan, options: InpodApplyOptions): Promise<ApplyOutcome> {
  const rules = rulePlan(plan)
  requireBinaries(['ip'])
  const outcome = await applyPlan(rules, { netns: options.netns, reconcile: true, logger: options.logger })
  const target = resolveTarget(options.netns)
  try {
    for (const family of families(plan)) {
      await runAt(target, 'ip', [family, 'route', 'replace', ...routeArgs(family)])
      if (!(await hasRule(target, family))) {
        await runAt(target, 'ip', [family, 'rule', 'add', ...ruleArgs, 'pref', String(ROUTE_RULE_PRIORITY)])
      }
    }
  } catch (err) {
    options.logger.error({ err, target: target.label }, 'policy routing failed; removing the rules again')
    await cleanupInpod(plan, options)
    throw err
  }
  return outcome
}

/** Removes the rules and the policy routing; what is not there is skipped. */
export async function cleanupInpod(plan: InpodPlan, options: InpodApplyOptions): Promise<void> {
  const rules = rulePlan(plan)
  requireBinaries(['ip'])
  await cleanupPlan(rules, { netns: options.netns, logger: options.logger })
  const target = resolveTarget(options.netns)
  for (const family of families(plan)) {
    while (await hasRule(target, family)) {
      await runAt(target, 'ip', [family, 'rule', 'del', ...ruleArgs, 'pref', String(ROUTE_RULE_PRIORITY)])
    }
    await runAt(target, 'ip', [family, 'route', 'del', ...routeArgs(family)], { allowFailure: true })
  }
}
