// Placeholder until the proxy lands.
import type { Command } from '../command.js'

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'run the sidecar: virtualOutbound on 15001, virtualInbound on 15006',
  async run(_argv, io) {
    io.stderr.write('not yet built\n')
    return 2
  },
}
