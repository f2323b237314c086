// `sidecar-lab proxy`: start the sidecar and its admin/health/metrics ports, drop to its uid, drain on
// SIGTERM/SIGINT or /quitquitquit, reopen the access log on SIGHUP.
import { startObservability } from '../admin/observability.js'
import type { Command } from '../command.js'
import { createLogger } from '../logger.js'
import { parseProxyFlags, proxyHelp } from './flags.js'
import { Sidecar } from './sidecar.js'

/** keepRootWithGroup: uid 0 still takes gid (TPROXY: root keeps CAP_NET_ADMIN, the rules exempt gid 1337). */
function dropPrivileges(uid: number, gid: number, keepRootWithGroup = false): void {
  if (process.getuid?.() !== 0 || (uid === 0 && !keepRootWithGroup)) return
  process.setgroups?.([])
  process.setgid?.(gid)
  if (uid !== 0) process.setuid?.(uid)
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
    dropPrivileges(config.uid, config.gid, config.interceptionMode === 'TPROXY')
    const sidecar = new Sidecar(config, log)
    const stop = new AbortController()
    io.signal.addEventListener('abort', () => stop.abort(), { once: true })
    if (io.signal.aborted) stop.abort()
    // Before the listeners, so /healthz/ready answers 503 until they are bound, as in Istio.
    const observability = await startObservability(sidecar, { quit: () => stop.abort() }, log.child({ component: 'admin' }))
    try {
      await sidecar.start()
    } catch (err) {
      await observability.close()
      throw err
    }
    const onHup = () => sidecar.reopenAccessLog()
    process.on('SIGHUP', onHup)
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve()
      stop.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    // The admin stays up through the drain so /ready and /healthz/ready can say DRAINING.
    await sidecar.drain()
    await observability.close()
    process.off('SIGHUP', onHup)
    log.flush()
    return 0
  },
}
