// `sidecar-lab inpod-rules`: istio-cni's ambient-mode rules (in-pod, or the node's probe SNAT) from flags.
// --dry-run prints them on stdout and nothing else there; the policy routing that goes with in-pod rules
// (istio-cni sets it over netlink, so it is no part of the rules) is named on stderr. Otherwise the in-pod
// rules and routing are applied (apply.ts), or removed with --cleanup-only, and one result line printed.
import type { Command } from '../command.js'
import type { ApplyOutcome } from '../iptables/apply.js'
import { createLogger } from '../logger.js'
import { applyInpod, cleanupInpod } from './apply.js'
import { buildInpodPlan, planText } from './build.js'
import { helpText, parseInpodFlags } from './flags.js'

const outcomeLine: Record<ApplyOutcome, string> = {
  applied: 'applied',
  unchanged: 'already in place',
  reconciled: 'replaced: the rules there differed',
}

export const inpodCommand: Command = {
  name: 'inpod-rules',
  async run(argv, io) {
    const s = parseInpodFlags(argv)
    if (s.help) {
      io.stdout.write(helpText())
      return 0
    }
    const plan = buildInpodPlan(s.config, { mode: s.mode, nativeNftables: s.nativeNftables })
    if (s.dryRun) {
      io.stdout.write(planText(plan))
      if (plan.routing) {
        const steps = [...plan.routing.routes, ...plan.routing.rules].map((line) => `  ${line}\n`).join('')
        io.stderr.write(`# with these rules istio-cni also sets up policy routing (over netlink):\n${steps}`)
      }
      return 0
    }
    const logger = createLogger().child({ component: 'inpod-rules' })
    const netns = s.networkNamespace || undefined
    const where = netns ? ` in ${netns}` : ''
    if (s.cleanupOnly) {
      await cleanupInpod(plan, { netns, logger })
      io.stdout.write(`cleaned up${where}\n`)
      return 0
    }
    const outcome = await applyInpod(plan, { netns, logger })
    io.stdout.write(`${outcomeLine[outcome]}${where}\n`)
    return 0
  },
}
