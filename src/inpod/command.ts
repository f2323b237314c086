// `sidecar-lab inpod-rules`: istio-cni's ambient-mode rules (in-pod, or the node's probe SNAT) from flags.
// --dry-run prints them on stdout and nothing else there; the policy routing that goes with in-pod rules
// (istio-cni sets it over netlink, so it is no part of the rules) is named on stderr. Applying is not built.
import type { Command } from '../command.js'
import { buildInpodPlan, planText } from './build.js'
import { COMMAND, helpText, parseInpodFlags } from './flags.js'

export const inpodCommand: Command = {
  name: 'inpod-rules',
  summary: "istio-cni's ambient rules: in-pod capture to ztunnel, or the node's probe SNAT",
  async run(argv, io) {
    const s = parseInpodFlags(argv)
    if (s.help) {
      io.stdout.write(helpText())
      return 0
    }
    const plan = buildInpodPlan(s.config, { mode: s.mode, nativeNftables: s.nativeNftables })
    if (!s.dryRun) {
      io.stderr.write(`error: ${COMMAND}: applying the rules is not built yet; --dry-run prints them\n`)
      return 2
    }
    io.stdout.write(planText(plan))
    if (plan.routing) {
      const steps = [...plan.routing.routes, ...plan.routing.rules].map((line) => `  ${line}\n`).join('')
      io.stderr.write(`# with these rules istio-cni also sets up policy routing (over netlink):\n${steps}`)
    }
    return 0
  },
}
