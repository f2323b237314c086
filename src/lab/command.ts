// `sidecar-lab lab`: up, down, status, exec, logs, rules.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import type { Command, CommandIO } from '../command.js'
import { InvalidFlagError, LabNotUpError } from '../errors.js'
import { parseCommandArgs, type ParsedArgs } from '../flags/args.js'
import { integer, oneOf } from '../flags/values.js'
import { quoteInput } from '../quote.js'
import { createLogger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import { applyRules, cliPath, down, up } from './lifecycle.js'
import { applyInpodRules, ztunnelAccessLog, ztunnelLog } from './ambient.js'
import { inNetns } from '../sys/netns.js'
import { appUser, podSpec, pods } from './scene.js'
import { labFlag, podDir, readState, type LabState } from './state.js'
import { collectStatus, renderStatus } from './status.js'
import { podLogFiles, showLogs } from './logs.js'
import { terminalWidth } from '../text/wrap.js'
import { downAll } from './sweep.js'
import { defaultRelay, relayEngines } from '../proxy/config.js'

const help = `usage: sidecar-lab lab <subcommand> [--lab NAME] [--log-format json|text]

Pods as network namespaces with real kernel NAT: productpage calls reviews:9080, both with the
capture rules and a sidecar as uid 1337; ratings has neither. A DNS server (dnsmasq, 198.18.0.53)
knows the services as NAME.default.svc.cluster.local and db.lab.test; every pod has Kubernetes'
resolv.conf. Addresses from 198.18.0.0/24 and 2001:2::/64 on a bridge in a namespace of the lab's
own; nothing routes out. Needs root.

subcommands:
  up [--compat legacy]           build the lab (again: a no-op when it is up) and print its short
                                 status; legacy = the published listing's layout
     [--mode REDIRECT|TPROXY]    inbound interception: REDIRECT (the app sees 127.0.0.6) or TPROXY
                                 (the app sees the caller; mangle rules, policy routing, sidecar as
                                 uid 0)
     [--docker]                  pods as containers: a holder owns each pod's namespace, and the
                                 init step, the sidecar (uid 1337) and the app (uid 1000) join it
                                 (image: scripts/docker-image.sh)
     [--dns-capture]             the injector's DNS capture (ISTIO_META_DNS_CAPTURE=true:
                                 --redirect-dns to 15053)
     [--ambient]                 ambient mode instead of sidecars: istio-cni's in-pod rules in
                                 productpage and reviews, one ztunnel in the node's namespace
                                 serving both from outside them (sidecar-lab ztunnel --help)
     [--relay node|native]       the sidecars' relay engine (default ${defaultRelay}): node (node:net)
                                 or native (the addon's epoll thread with splice); status shows
                                 the engine each sidecar reports
     [--verbose]                 the status with every counter (as status --verbose)
  down [--all]                   remove namespaces, links, processes, rules and state, whatever
                                 state it is in; --all: every lab, and what an interrupted
                                 \`npm test\` left
  status [--verbose|--json]      pods, addresses, sidecars and the capture rules that caught
                                 packets; --verbose: every counter of both families; --json: all of
                                 it, for scripts
  exec POD [--uid N] -- CMD...   run a command in a pod's namespace with the host's programs (as
                                 uid ${appUser.uid}, unless --uid)
  logs POD [-f] [--json]         the pod's sidecar log (as text lines; --json: as written), access
                                 log and app log (ambient: the ztunnel's log and access log, and
                                 the app's); -f follows them until Ctrl-C
  rules off|on                   remove or re-apply the capture rules in the sidecar pods (for
                                 direct runs)

--lab NAME names the lab (default sidecar-lab), so several can exist side by side.
--log-format json|text: the lab's own log lines (default text on a terminal, json otherwise;
  env SIDECAR_LAB_LOG_FORMAT).
`

const options = {
  lab: { type: 'string', value: 'NAME' },
  help: { type: 'boolean' },
  uid: { type: 'string', value: 'N' },
  compat: { type: 'string', value: 'legacy' },
  docker: { type: 'boolean' },
  mode: { type: 'string', value: 'REDIRECT|TPROXY' },
  'dns-capture': { type: 'boolean' },
  ambient: { type: 'boolean' },
  relay: { type: 'string', value: 'node|native' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  verbose: { type: 'boolean' },
  'log-format': { type: 'string', value: 'json|text' },
} as const

/** The flags of one subcommand only; the others share --lab and --help. */
const only: Partial<Record<keyof typeof options, string | string[]>> = {
  uid: 'exec',
  compat: 'up',
  docker: 'up',
  mode: 'up',
  'dns-capture': 'up',
  ambient: 'up',
  relay: 'up',
  all: 'down',
  follow: 'logs',
  json: ['status', 'logs'],
  verbose: ['up', 'status'],
}

function parse(argv: string[], sub: string): ParsedArgs<typeof options> {
  const parsed = parseCommandArgs(argv, options, 'sidecar-lab lab', true)
  for (const [flag, owner] of Object.entries(only)) {
    const owners = typeof owner === 'string' ? [owner] : owner
    // given to another subcommand it would be ignored without a word: `lab status --mode TPROXY`
    if (parsed.values[flag as keyof typeof options] !== undefined && !owners.includes(sub))
      throw new InvalidFlagError(`--${flag} goes with ${owners.map((o) => `'lab ${o}'`).join(' or ')}, not 'lab ${sub}'`)
  }
  return parsed
}

function requireState(lab: string): LabState {
  const state = readState(lab)
  if (!state) throw new LabNotUpError(lab)
  return state
}

function podOf(state: LabState, name: string | undefined) {
  const pod = name ? state.pods[name] : undefined
  if (!pod) throw new InvalidFlagError(`no pod ${quoteInput(name ?? '')}: the lab's pods are ${pods.map((p) => p.name).join(', ')}`)
  return pod
}

function execPod(argv: string[], io: CommandIO): Promise<number> {
  const dash = argv.indexOf('--')
  const own = dash === -1 ? argv : argv.slice(0, dash)
  const cmd = dash === -1 ? [] : argv.slice(dash + 1)
  const { values, positionals } = parse(own, 'exec')
  // every flag before the lab's state, so a bad flag is named whether the lab is up or not
  const lab = labFlag(values.lab)
  const uid = integer('uid', values.uid, appUser.uid, 0, 4294967294)
  if (cmd.length === 0) throw new InvalidFlagError("lab exec: give the command after '--' (lab exec productpage -- curl reviews)")
  const pod = podOf(requireState(lab), positionals[0])
  const [program, ...args] = inNetns(pod.ns, cmd, uid === 0 ? undefined : { uid, gid: uid })
  return new Promise((resolve) => {
    const child = spawn(program!, args, { stdio: ['inherit', 'pipe', 'pipe'] })
    child.stdout.pipe(io.stdout, { end: false })
    child.stderr.pipe(io.stderr, { end: false })
    child.on('error', (err) => {
      io.stderr.write(`error: ${err.message}\n`)
      resolve(127)
    })
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
  })
}

async function logs(state: LabState, name: string | undefined, o: { json: boolean; follow: boolean }, io: CommandIO) {
  podOf(state, name)
  // ambient mode: no sidecar in the pod; the ztunnel's logs on the node (all its pods) and the pod's app log
  const paths = state.ambient
    ? [ztunnelLog(state.lab), ztunnelAccessLog(state.lab), join(podDir(state.lab, name!), 'app.log')]
    : podLogFiles.map((file) => join(podDir(state.lab, name!), file))
  await showLogs(paths, { ...o, signal: io.signal }, (text) => io.stdout.write(text))
  return 0
}

export const labCommand: Command = {
  name: 'lab',
  async run(argv, io) {
    const [sub, ...rest] = argv
    if (!sub || sub === '--help' || sub === 'help') {
      io.stdout.write(help)
      return sub ? 0 : 2
    }
    if (sub === 'exec') return execPod(rest, io)
    const { values, positionals } = parse(rest, sub)
    if (values.help) {
      io.stdout.write(help)
      return 0
    }
    const lab = labFlag(values.lab)
    const log = createLogger({ level: 'warn', format: resolveLogFormat(values['log-format'], io.env, io.stderr) })
    switch (sub) {
      case 'up': {
        if (values.compat !== undefined) oneOf('compat', values.compat, ['legacy'])
        const mode = oneOf('mode', values.mode ?? 'REDIRECT', ['REDIRECT', 'TPROXY'] as const)
        const relay = oneOf('relay', values.relay ?? defaultRelay, relayEngines)
        const { state, already } = await up({
          lab,
          rules: values.compat ? 'legacy' : 'istio',
          mode,
          docker: values.docker === true,
          dnsCapture: values['dns-capture'] === true,
          ambient: values.ambient === true,
          relay,
          log,
        })
        io.stdout.write(already ? `lab ${lab} is already up\n` : `lab ${lab} is up\n`)
        io.stdout.write(await renderStatus(state, lab, values.verbose === true, terminalWidth(io.stdout)))
        return 0
      }
      case 'down': {
        if (values.all) {
          if (values.lab !== undefined) throw new InvalidFlagError('--all takes every lab down: give it without --lab')
          const lines = await downAll(log)
          io.stdout.write(lines.length ? lines.join('\n') + '\n' : 'no lab is up and no test run left anything; nothing to remove\n')
          return 0
        }
        const { removed } = await down(lab, log)
        io.stdout.write(
          removed.length ? `lab ${lab} is down: removed ${removed.join(', ')}\n` : `lab ${lab} was not up; nothing to remove\n`,
        )
        return 0
      }
      case 'status':
        if (values.json) io.stdout.write(JSON.stringify(await collectStatus(readState(lab), lab), null, 2) + '\n')
        else io.stdout.write(await renderStatus(readState(lab), lab, values.verbose === true, terminalWidth(io.stdout)))
        return 0
      case 'logs':
        return logs(requireState(lab), positionals[0], { json: values.json === true, follow: values.follow === true }, io)
      case 'rules': {
        const state = requireState(lab)
        const mode = positionals[0]
        if (mode !== 'on' && mode !== 'off') throw new InvalidFlagError(`lab rules: say 'on' or 'off', not ${quoteInput(mode ?? '')}`)
        for (const spec of pods.filter((p) => p.sidecar)) {
          const result = state.ambient
            ? await applyInpodRules(state, spec.name, cliPath, mode === 'off')
            : await applyRules(state, spec.name, mode === 'off')
          io.stdout.write(`${spec.name}: ${result}\n`)
        }
        return 0
      }
      default:
        if (podSpec(sub)) throw new InvalidFlagError(`'${sub}' is a pod; did you mean 'lab exec ${sub} -- CMD'?`)
        io.stderr.write(`error: unknown lab subcommand '${sub}'\n\n${help}`)
        return 2
    }
  },
}
