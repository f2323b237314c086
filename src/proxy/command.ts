// `sidecar-lab proxy`: start the sidecar, drop to its uid, drain on SIGTERM/SIGINT, reopen the access
// log on SIGHUP.
import type { Command } from '../command.js'
import { createLogger } from '../logger.js'
import { parseProxyFlags, proxyHelp } from './flags.js'
import { Sidecar } from './sidecar.js'

function dropPrivileges(uid: number, gid: number): void {
  if (process.getuid?.() !== 0 || uid === 0) return
  process.setgroups?.([])
  process.setgid?.(gid)
  process.setuid?.(uid)
}

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'run the sidecar: virtualOutbound on 15001, virtualInbound on 15006',
  async run(argv, io) {
    const config = parseProxyFlags(argv, io.env)
    if (config === 'help') {
      io.stdout.write(proxyHelp())
      return 0
    }
    const log = createLogger({ level: config.logLevel })
    // Sockets take the owner of the process that creates them, and the capture rules match on that owner,
    // so the switch must happen before the first socket exists.
    dropPrivileges(config.uid, config.gid)
    const sidecar = new Sidecar(config, log)
    await sidecar.start()
    const onHup = () => sidecar.reopenAccessLog()
    process.on('SIGHUP', onHup)
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve()
      io.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await sidecar.drain()
    process.off('SIGHUP', onHup)
    log.flush()
    return 0
  },
}
