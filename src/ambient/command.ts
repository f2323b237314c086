// `sidecar-lab ztunnel`: the node proxy of ambient mode. Pods come from --pod (a network namespace's path)
// and from the istio-cni node agent over ZDS (the netns as a descriptor); SIGTERM/SIGINT or POST
// /quitquitquit stop it, closing every pod's listeners.
import { openSync } from 'node:fs'
import type { Command } from '../command.js'
import { InvalidFlagError } from '../errors.js'
import { createLogger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import { quoteInput } from '../quote.js'
import { startZtunnelAdmin } from './admin.js'
import { parseZtunnelFlags, ztunnelHelp, type StaticPod } from './flags.js'
import { Ztunnel } from './ztunnel.js'

export const ztunnelCommand: Command = {
  name: 'ztunnel',
  async run(argv, io) {
    const settings = parseZtunnelFlags(argv)
    if (settings === 'help') {
      io.stdout.write(ztunnelHelp())
      return 0
    }
    const log = createLogger({ level: settings.proxy.logLevel, format: resolveLogFormat(settings.logFormat, io.env, io.stderr) })
    const stop = new AbortController()
    io.signal.addEventListener('abort', () => stop.abort(), { once: true })
    if (io.signal.aborted) stop.abort()
    const z = new Ztunnel({ proxy: settings.proxy, accessLog: settings.accessLog }, log)
    z.start()
    const pending = new Set<string>(settings.pods.map((p) => `pod ${p.info.name}`))
    const endpoints = await startZtunnelAdmin(
      z,
      { admin: settings.adminPort, stats: settings.statsPort, ready: settings.readyPort },
      { pending: () => [...pending], quit: () => stop.abort() },
      log.child({ component: 'admin' }),
    )
    try {
      for (const pod of settings.pods) {
        await z.add(pod.info, openNetns(pod))
        pending.delete(`pod ${pod.info.name}`)
      }
    } catch (err) {
      await z.stop()
      await Promise.all(endpoints.map((e) => e.close()))
      throw err
    }
    log.info({ pods: z.pods.size, relay: settings.proxy.relay }, `ztunnel ready (relay engine: ${settings.proxy.relay})`)
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve()
      stop.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await z.stop()
    await Promise.all(endpoints.map((e) => e.close()))
    log.info('ztunnel stopped')
    log.flush()
    return 0
  },
}

function openNetns(pod: StaticPod): number {
  try {
    return openSync(pod.netns, 'r')
  } catch (err) {
    throw new InvalidFlagError(
      `--pod ${pod.info.name}: cannot open its network namespace ${quoteInput(pod.netns, 200)}: ${(err as NodeJS.ErrnoException).code}`,
    )
  }
}
