// `sidecar-lab proxy`: start the sidecar and its admin/health/metrics ports, drop to its uid, drain on
// SIGTERM/SIGINT or /quitquitquit, reopen the access log on SIGHUP.
import { startObservability } from '../admin/observability.js'
import type { Command } from '../command.js'
import { createLogger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import type { ProxyConfig } from './config.js'
import { watchEventLoop } from './event-loop.js'
import { parseProxyArgs, proxyHelp } from './flags.js'
import { Sidecar } from './sidecar.js'

/**
 * --uid/--gid only take effect when started as root; otherwise the proxy keeps its own identity, which the
 * capture rules may not exempt. Say so in one line, naming the flags and the identity it runs as.
 */
export function identityWarning(config: Pick<ProxyConfig, 'uid' | 'gid'>, given: Set<string>, uid: number, gid: number): string | null {
  if (uid === 0) return null
  const ignored = [
    given.has('uid') && config.uid !== uid ? `--uid ${config.uid}` : '',
    given.has('gid') && config.gid !== gid ? `--gid ${config.gid}` : '',
  ].filter(Boolean)
  if (ignored.length === 0) return null
  return `${ignored.join(' and ')} ${ignored.length > 1 ? 'are' : 'is'} ignored: not started as root, the proxy runs as uid ${uid}, gid ${gid}`
}

/** keepRootWithGroup: uid 0 still takes gid (TPROXY: root keeps CAP_NET_ADMIN, the rules exempt gid 1337). */
function dropPrivileges(uid: number, gid: number, keepRootWithGroup = false): void {
  if (process.getuid?.() !== 0 || (uid === 0 && !keepRootWithGroup)) return
  process.setgroups?.([])
  process.setgid?.(gid)
  if (uid !== 0) process.setuid?.(uid)
}

export const proxyCommand: Command = {
  name: 'proxy',
  async run(argv, io) {
    const parsed = parseProxyArgs(argv, io.env)
    if (parsed === 'help') {
      io.stdout.write(proxyHelp())
      return 0
    }
    const { config, given } = parsed
    const log = createLogger({ level: config.logLevel, format: resolveLogFormat(parsed.logFormat, io.env, io.stderr) })
    const uid = process.getuid?.()
    const gid = process.getgid?.()
    const warning = uid === undefined || gid === undefined ? null : identityWarning(config, given, uid, gid)
    if (warning) log.warn({ uid, gid }, warning)
    // Sockets take the owner of the process that creates them, and the capture rules match on that owner,
    // so the switch must happen before the first socket exists.
    dropPrivileges(config.uid, config.gid, config.interceptionMode === 'TPROXY')
    // Opens the access log, as the uid just switched to and before anything listens, so a path that uid
    // cannot write stops the sidecar here with AccessLogError (exit 2).
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
    const stopEventLoopGauges = watchEventLoop(sidecar.stats)
    const onHup = () => sidecar.reopenAccessLog()
    process.on('SIGHUP', onHup)
    // A stop, or a sidecar that cannot go on (the native relay engine went down): that one exits non-zero.
    const failure = await new Promise<Error | undefined>((resolve) => {
      if (stop.signal.aborted) resolve(undefined)
      stop.signal.addEventListener('abort', () => resolve(undefined), { once: true })
      void sidecar.failure.then(resolve)
    })
    // The admin stays up through the drain so /ready and /healthz/ready can say DRAINING.
    await sidecar.drain()
    await observability.close()
    stopEventLoopGauges()
    process.off('SIGHUP', onHup)
    log.flush()
    if (failure) throw failure
    return 0
  },
}
