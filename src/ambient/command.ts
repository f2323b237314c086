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
import { ZdsClient } from './zds.js'
import type { Logger } from '../logger.js'

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
    const z = new Ztunnel({ proxy: settings.proxy, accessLog: settings.accessLog, mesh: settings.mesh ?? undefined }, log)
    z.start()
    const pending = new Set<string>(settings.pods.map((p) => `pod ${p.info.name}`))
    if (settings.zds) pending.add("the node agent's snapshot")
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
    let zds: ZdsClient | null = null
    if (settings.zds) {
      const path = settings.zds
      // ready once the agent's snapshot is in: every pod it holds is served (or was refused, and nacked)
      await new Promise<void>((resolve) => {
        zds = startZds(
          path,
          z,
          () => {
            pending.delete("the node agent's snapshot")
            resolve()
          },
          log,
        )
        stop.signal.addEventListener('abort', () => resolve(), { once: true })
        log.info({ path }, "waiting for the node agent's snapshot")
      })
    }
    log.info(
      {
        pods: [...z.pods.values()].map((p) => p.info.name),
        relay: settings.proxy.relay,
        zds: settings.zds,
        hboneWorkloads: settings.mesh?.table.workloads.filter((w) => w.protocol === 'HBONE').length ?? 0,
      },
      `ztunnel ready (relay engine: ${settings.proxy.relay})`,
    )
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) resolve()
      stop.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    await (zds as ZdsClient | null)?.close()
    await z.stop()
    await Promise.all(endpoints.map((e) => e.close()))
    log.info('ztunnel stopped')
    log.flush()
    return 0
  },
}

/** ztunnel's side of ZDS: the agent's pods added and removed as it says; its snapshot makes the ztunnel ready. */
function startZds(path: string, z: Ztunnel, snapshot: () => void, log: Logger): ZdsClient {
  const client = new ZdsClient({
    path,
    logger: log.child({ component: 'zds' }),
    handler: {
      add: (w) => z.add({ uid: w.uid, ...w.workload }, w.netnsFd),
      del: async (uid) => {
        await z.remove(uid)
      },
      keep: (uid) => log.info({ uid }, 'pod keep received. will not delete it when snapshot is sent'),
      snapshotSent: (uids) => z.reconcile(new Set(uids)),
    },
  })
  client.on('snapshot', snapshot)
  client.on('connected', () => log.info({ path }, 'connected to the node agent'))
  client.on('disconnected', (reason: string) => log.warn({ path, reason }, 'node agent connection lost: reconnecting, pods kept'))
  client.start()
  return client
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
