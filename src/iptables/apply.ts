// Applies a Plan to the kernel, verifying first the way istio-iptables does. The only code in
// src/iptables that runs programs. (Work in progress: the signatures are stable, the body lands next.)
import type { Logger } from '../logger.js'
import type { Plan } from './plan.js'

export interface ApplyOptions {
  /** namespace name (in /run/netns) or path (e.g. /var/run/netns/x); unset = the current namespace */
  netns?: string
  /** present and different: clean up and re-apply instead of failing */
  reconcile?: boolean
  /** apply without checking what is there */
  forceApply?: boolean
  logger: Logger
}

export type ApplyOutcome = 'applied' | 'unchanged' | 'reconciled'

export interface VerifyResult {
  /** some of the plan's chains or rules are present */
  residue: boolean
  /** how the present state differs from the plan, one line each; empty when equal */
  delta: string[]
}

export async function applyPlan(_plan: Plan, _options: ApplyOptions): Promise<ApplyOutcome> {
  throw new Error('applyPlan: not yet implemented')
}

export async function verifyPlan(_plan: Plan, _options: { netns?: string }): Promise<VerifyResult> {
  throw new Error('verifyPlan: not yet implemented')
}

export async function cleanupPlan(_plan: Plan, _options: { netns?: string; logger: Logger }): Promise<void> {
  throw new Error('cleanupPlan: not yet implemented')
}
