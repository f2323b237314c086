// The server-state endpoints: /ready, /server_info, /healthcheck/fail|ok, /drain_listeners, /logging,
// /quitquitquit. Answers are Envoy's ("OK\n", the state name, 503 when not LIVE).
import type { Logger } from '../logger.js'
import { flag, json, text, type AdminRoute } from './router.js'
import type { AdminControl, AdminTarget } from './target.js'

/** Envoy's level names, and the pino level each stands for. */
const levels: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  off: 'silent',
}
const envoyLevelNames = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off']
const pinoToEnvoy: Record<string, string> = { warn: 'warning', fatal: 'critical', silent: 'off' }

function activeLoggers(loggers: Record<string, Logger>): string {
  const rows = Object.entries(loggers).map(([name, l]) => `  ${name}: ${pinoToEnvoy[l.level] ?? l.level}`)
  return ['active loggers:', ...rows].join('\n') + '\n'
}

function durationSeconds(ms: number): string {
  return `${Math.floor(ms / 1000)}s`
}

export function serverInfo(target: AdminTarget): unknown {
  const uptime = durationSeconds(Date.now() - target.startTime.getTime())
  const c = target.config
  return {
    version: `sidecar-lab/0.1.0/Clean/RELEASE/node-${process.version}`,
    state: target.state,
    hot_restart_version: 'disabled',
    command_line_options: {
      concurrency: 1,
      log_level: pinoToEnvoy[c.logLevel] ?? c.logLevel,
      drain_time: durationSeconds(c.drainMs),
      drain_strategy: 'Immediate',
      mode: 'Serve',
      // ours: which engine relays the bytes (--relay)
      relay: c.relay,
    },
    node: { id: `sidecar~${c.bindAddress}~sidecar-lab.default~default.svc.cluster.local`, cluster: 'sidecar-lab' },
    uptime_current_epoch: uptime,
    uptime_all_epochs: uptime,
  }
}

export function serverRoutes(target: AdminTarget, control: AdminControl): AdminRoute[] {
  return [
    {
      path: '/ready',
      help: 'print server state, return 200 if LIVE, otherwise return 503',
      handle: () => text(`${target.state}\n`, target.state === 'LIVE' ? 200 : 503),
    },
    { path: '/server_info', help: 'print server version/status information', handle: () => json(serverInfo(target)) },
    {
      path: '/healthcheck/fail',
      help: 'cause the server to fail health checks',
      mutates: true,
      handle() {
        target.failHealthcheck(true)
        return text('OK\n')
      },
    },
    {
      path: '/healthcheck/ok',
      help: 'cause the server to pass health checks',
      mutates: true,
      handle() {
        target.failHealthcheck(false)
        return text('OK\n')
      },
    },
    {
      path: '/drain_listeners',
      help: 'drain listeners',
      mutates: true,
      params: [
        { name: 'graceful', help: 'When draining listeners, let open connections finish for the drain period instead of closing them' },
        { name: 'inboundonly', help: 'Drains all inbound listeners (virtualInbound).' },
      ],
      async handle(req) {
        await target.drainListeners({ inboundOnly: flag(req.query, 'inboundonly'), graceful: flag(req.query, 'graceful') })
        return text('OK\n')
      },
    },
    {
      path: '/logging',
      help: 'query/change logging levels',
      mutates: true,
      params: [{ name: 'level', help: "desired logging level, this will change all loggers's level", choices: ['', ...envoyLevelNames] }],
      handle(req) {
        const loggers = target.loggers()
        const wanted = req.query.get('level')
        if (wanted === null || wanted === '') return text(activeLoggers(loggers))
        const level = levels[wanted]
        if (!level)
          return text(`usage: /logging?level=<level>\nlevels: ${envoyLevelNames.join(' ')}\nerror: unknown logger level '${wanted}'\n`, 404)
        for (const l of Object.values(loggers)) l.level = level
        return text(activeLoggers(loggers))
      },
    },
    {
      path: '/quitquitquit',
      help: 'exit the server',
      mutates: true,
      handle() {
        // After the reply is on its way: the drain that follows closes this admin port too.
        setImmediate(() => control.quit())
        return text('OK\n')
      },
    },
  ]
}
