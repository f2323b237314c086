// Placeholder: the rule generator's command (issue 3) replaces this file.
import type { Command } from '../command.js'

export const iptablesCommand: Command = {
  name: 'iptables',
  summary: "generate and apply Istio's capture rules (istio-iptables' flags)",
  async run(_argv, io) {
    io.stderr.write('not yet built\n')
    return 2
  },
}
