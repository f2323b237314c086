// `sidecar-lab iptables`: istio-iptables' flags in, capture rules out. --dry-run / --explain print the
// plan on stdout and nothing else (with --cleanup-only, --dry-run prints what cleanup removes); otherwise
// apply.ts programs the kernel and one result line is printed.
import { readFileSync } from 'node:fs'
import type { Command } from '../command.js'
import { createLogger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import { applyPlan, cleanupPlan } from './apply.js'
import type { ApplyOutcome } from './apply.js'
import { buildPlan, planText } from './build.js'
import { cleanupText } from './cleanup.js'
import { helpText, parseFlags } from './flags.js'
import { setupCommands } from './routing.js'

const outcomeLine: Record<ApplyOutcome, string> = {
  applied: 'applied',
  unchanged: 'already in place',
  reconciled: 'reconciled: rules differed, cleaned up and applied again',
}

export const iptablesCommand: Command = {
  name: 'iptables',
  async run(argv, io) {
    const { rules, run } = parseFlags(argv, { env: io.env, lookupUid: uidOf })
    if (run.help) {
      io.stdout.write(helpText())
      return 0
    }
    const mode = rules.inboundInterceptionMode
    if (mode !== '' && mode !== 'REDIRECT' && mode !== 'TPROXY') {
      // istio-iptables treats every value but TPROXY as REDIRECT; so do we, but a typo should not pass unseen.
      io.stderr.write(
        `warning: -m/--istio-inbound-interception-mode '${mode}' is neither REDIRECT nor TPROXY: using REDIRECT, as istio-iptables does\n`,
      )
    }
    const plan = buildPlan(rules, { nativeNftables: run.nativeNftables, compat: run.compat, explain: run.explain })
    if (run.dryRun && run.cleanupOnly && !run.explain) {
      io.stdout.write(cleanupText(plan))
      return 0
    }
    if (run.dryRun || run.explain) {
      // TPROXY's policy routing is not restore input: shown as comments, so the output still feeds iptables-restore.
      const routing = plan.tproxy ? setupCommands(plan.tproxy).map((c) => `# ${c}\n`) : []
      io.stdout.write(planText(plan) + routing.join(''))
      return 0
    }
    const format = resolveLogFormat(run.logFormat, io.env, io.stderr)
    const logger = createLogger({ format }).child({ component: 'iptables' })
    const netns = run.networkNamespace || undefined
    if (run.cleanupOnly) {
      await cleanupPlan(plan, { netns, logger })
      io.stdout.write(`cleaned up${netns ? ` in ${netns}` : ''}\n`)
      return 0
    }
    const outcome = await applyPlan(plan, { netns, reconcile: run.reconcile, forceApply: run.forceApply, logger })
    io.stdout.write(`${outcomeLine[outcome]}${netns ? ` in ${netns}` : ''}\n`)
    return 0
  },
}

/** uid of a user from /etc/passwd (what the Go user.Lookup in istio-iptables reads for $ENVOY_USER). */
function uidOf(user: string): number | undefined {
  let passwd: string
  try {
    passwd = readFileSync('/etc/passwd', 'utf8')
  } catch {
    return undefined
  }
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':')
    if (name === user && uid && /^\d+$/.test(uid)) return Number(uid)
  }
  return undefined
}
