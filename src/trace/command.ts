// `sidecar-lab trace`: one request through the lab, every netfilter chain its connection setup hit
// (from the kernel's own trace), the sidecars' accepts, and the walkthrough's two open questions answered.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { InvalidFlagError, LabNotUpError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { port as portFlag } from '../flags/values.js'
import { appPort, pods } from '../lab/scene.js'
import { labFlag, readState } from '../lab/state.js'
import { renderAmbientText } from './ambient/render.js'
import { runAmbientTrace } from './ambient/run.js'
import { ambientCounts, renderComparison, sidecarCounts } from './ambient/compare.js'
import { quoteInput } from '../quote.js'
import { renderDnsJson, renderDnsSvg, renderDnsText } from './dns/render.js'
import { runDnsTrace } from './dns/report.js'
import { createLogger } from '../logger.js'
import { renderJson } from './render/json.js'
import { renderSvg } from './render/svg.js'
import { renderText } from './render/text.js'
import { renderWalkthroughJson, renderWalkthroughText } from './walkthrough/render.js'
import { renderWalkthroughSvg } from './walkthrough/render-svg.js'
import { runTrace, type TraceOptions } from './capture/run.js'
import { walkthrough } from './walkthrough/verdicts.js'
import { cliCommand } from '../invocation.js'
import { terminalWidth, wrapText } from '../text/wrap.js'
import { resolveLogFormat } from '../log-format.js'

const help = `usage: sidecar-lab trace [--from POD] [--to POD] [--port N] [--lab NAME] [--walkthrough] [--json] [--svg FILE] [--raw DIR]
       sidecar-lab trace --compare LAB [--lab NAME] [--from POD] [--to POD] [--json]

Sends one request from a lab pod's app to another pod (curl, as the app's uid ${1000}) and prints the path
of its connection setup as numbered steps: each SYN and SYN-ACK, in each pod, with every netfilter chain
and rule it hit and the verdict (from 'nft monitor trace'), where each sidecar accepted it, the original
destination it recovered and the new connection it opened. Ends with the walkthrough's two questions
(does step 16 loop? new connection or rewritten packets?) answered from the trace and conntrack. Each
step is tagged with the walkthrough step (1-15) it belongs to, e.g. [w4].

A temporary table 'inet sidecar_lab_trace' in each pod marks the packets for tracing; it is removed
afterwards, also on failure. Needs root and a lab that is up ('sidecar-lab lab up').

flags:
  --from POD     the pod whose app sends the request (default productpage)
  --to POD       the pod it calls (default reviews)
  --port N       the port it calls (default ${appPort})
  --lab NAME     the lab (default sidecar-lab)
  --walkthrough  print the walkthrough's own 15 steps instead, each with this run's evidence and a
                 verdict (confirmed, corrected, not observable); with --json and --svg in that form too
  --json         print the report as JSON (steps[], answers{}) instead of text
  --svg FILE     also write a sequence diagram of the steps to FILE
  --raw DIR      also save each pod's raw 'nft monitor' output in DIR
  --compare LAB  trace the same request in --lab and in LAB (one lab in sidecar mode, the other in
                 ambient mode: 'lab up --ambient') and print both counted side by side: processes in
                 the path, TCP connections, rules walked, NAT rewrites, user-space hops

Ambient mode (a lab from 'lab up --ambient'): the same steps, the ztunnel's hops (from its access
log) in place of the sidecars', each packet's mark and its connection's ct mark, the in-pod REDIRECT
that the ztunnel's marked SYNs do not take (no loop), and how the app's reply finds its way back
(fwmark 0x111, table 100). --walkthrough tells sidecar mode's story: skipped there, with a line.

DNS: sidecar-lab trace --dns [NAME] [--no-ct-zones] [--lab NAME] [--json] [--svg FILE]
  One lookup of NAME (default db.lab.test, forwarded by the sidecar) from productpage's app (dig, uid 1000):
  every raw and nat rule the app's query, the sidecar's upstream query and their replies hit, conntrack's
  entries with their zones, and the zone probe: the app's query sent from the port the sidecar's upstream
  query just used. Needs a lab with DNS capture (lab up --compat legacy, or --dns-capture).
  --no-ct-zones  also run the probe in a throwaway lab (<lab>-nz) whose raw-table CT rules are removed
`

interface Flags {
  from: string
  to: string
  port: number
  lab: string
  json: boolean
  walkthrough: boolean
  svg?: string
  raw?: string
  /** trace --compare LAB: the same request in --lab and in LAB, one in sidecar mode and one in ambient mode */
  compare?: string
  /** trace --dns [NAME] [--no-ct-zones] */
  dns?: { name?: string; noCtZones: boolean }
}

function parseFlags(argv: string[]): Flags | 'help' {
  const options = {
    from: { type: 'string', value: 'POD' },
    to: { type: 'string', value: 'POD' },
    port: { type: 'string', value: 'N' },
    lab: { type: 'string', value: 'NAME' },
    json: { type: 'boolean' },
    walkthrough: { type: 'boolean' },
    svg: { type: 'string', value: 'FILE' },
    raw: { type: 'string', value: 'DIR' },
    help: { type: 'boolean', short: 'h' },
    dns: { type: 'boolean' },
    'no-ct-zones': { type: 'boolean' },
    compare: { type: 'string', value: 'LAB' },
  } as const
  const { values, positionals } = parseCommandArgs(argv, options, 'sidecar-lab trace', true)
  if (values.help) return 'help'
  const stray = positionals[values.dns ? 1 : 0]
  if (stray !== undefined) {
    throw new InvalidFlagError(
      `unexpected argument ${quoteInput(stray)}: only 'trace --dns' takes one (a name) (see '${cliCommand('trace --help')}')`,
    )
  }
  if (values['no-ct-zones'] && !values.dns) throw new InvalidFlagError('--no-ct-zones goes with --dns')
  const dnsName = positionals[0]
  if (dnsName !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(dnsName))
    throw new InvalidFlagError(`trace --dns: ${quoteInput(dnsName)} is not a host name`)
  const names = pods.map((p) => p.name as string)
  for (const key of ['from', 'to'] as const) {
    const v = values[key]
    if (v !== undefined && !names.includes(v))
      throw new InvalidFlagError(`--${key}: no pod ${quoteInput(v)}; the lab's pods are ${names.join(', ')}`)
  }
  const port = portFlag('port', values.port, appPort)
  const lab = labFlag(values.lab)
  const flags: Flags = {
    from: values.from ?? 'productpage',
    to: values.to ?? 'reviews',
    port,
    lab,
    json: values.json ?? false,
    walkthrough: values.walkthrough ?? false,
  }
  if (values.svg !== undefined) flags.svg = values.svg
  if (values.raw !== undefined) flags.raw = values.raw
  if (values.compare !== undefined) {
    const other = labFlag(values.compare)
    if (other === lab) throw new InvalidFlagError(`--compare: give it the other lab; ${quoteInput(other)} is --lab's`)
    const clash = (['dns', 'walkthrough', 'svg', 'raw'] as const).find((k) => values[k] !== undefined)
    if (clash) throw new InvalidFlagError(`--compare counts two traces; it does not go with --${clash}`)
    flags.compare = other
  }
  if (values.dns) flags.dns = { noCtZones: values['no-ct-zones'] ?? false, ...(dnsName ? { name: dnsName } : {}) }
  return flags
}

export const traceCommand: Command = {
  name: 'trace',
  async run(argv, io) {
    const flags = parseFlags(argv)
    if (flags === 'help') {
      io.stdout.write(help)
      return 0
    }
    if (flags.dns) {
      const log = createLogger({ level: 'warn', format: resolveLogFormat(undefined, io.env, io.stderr) })
      const dns = await runDnsTrace({
        lab: flags.lab,
        noCtZones: flags.dns.noCtZones,
        log,
        signal: io.signal,
        ...(flags.dns.name ? { name: flags.dns.name } : {}),
      })
      if (flags.raw) {
        mkdirSync(flags.raw, { recursive: true })
        writeFileSync(join(flags.raw, 'productpage.dns.nft-monitor.txt'), dns.lookup.raw)
      }
      if (flags.svg) writeFileSync(flags.svg, renderDnsSvg(dns))
      io.stdout.write(flags.json ? renderDnsJson(dns) : renderDnsText(dns, terminalWidth(io.stdout)))
      return dns.lookup.dig.status === 'NOERROR' ? 0 : 1
    }
    const options = { lab: flags.lab, from: flags.from, to: flags.to, port: flags.port, signal: io.signal }
    if (flags.compare) return runCompare(flags, options, flags.compare, io)
    if (readState(flags.lab)?.ambient) return runAmbient(flags, options, io)
    const report = await runTrace(options)
    if (flags.raw) {
      mkdirSync(flags.raw, { recursive: true })
      for (const [pod, text] of Object.entries(report.raw)) writeFileSync(join(flags.raw, `${pod}.nft-monitor.txt`), text)
    }
    if (flags.walkthrough) {
      const w = walkthrough(report)
      if (flags.svg) writeFileSync(flags.svg, renderWalkthroughSvg(w))
      io.stdout.write(flags.json ? renderWalkthroughJson(w) : renderWalkthroughText(w, terminalWidth(io.stdout)))
      return report.request.status.startsWith('HTTP ') ? 0 : 1
    }
    if (flags.svg) writeFileSync(flags.svg, renderSvg(report))
    io.stdout.write(flags.json ? renderJson(report) : renderText(report, terminalWidth(io.stdout)))
    return report.request.status.startsWith('HTTP ') ? 0 : 1
  },
}

/** An ambient lab: the ztunnel's hops instead of sidecars; the walkthrough (sidecar mode's story) does not apply. */
async function runAmbient(flags: Flags, options: TraceOptions, io: Parameters<Command['run']>[1]): Promise<number> {
  if (flags.svg) throw new InvalidFlagError(`--svg: the diagram is drawn for sidecar labs only; lab ${flags.lab} is in ambient mode`)
  const report = await runAmbientTrace(options)
  if (flags.raw) {
    mkdirSync(flags.raw, { recursive: true })
    for (const [pod, text] of Object.entries(report.raw)) writeFileSync(join(flags.raw, `${pod}.nft-monitor.txt`), text)
  }
  const skipped =
    `--walkthrough: lab ${flags.lab} is in ambient mode. The walkthrough's 15 steps tell sidecar mode's story ` +
    '(a sidecar in each pod); its ambient counterparts are the answers at the end of this trace (the loop and the route of the reply).\n\n'
  const { raw: _raw, ...shown } = report
  const text = flags.json ? JSON.stringify(shown, null, 2) + '\n' : renderAmbientText(report, terminalWidth(io.stdout))
  io.stdout.write((flags.walkthrough && !flags.json ? wrapText(skipped, terminalWidth(io.stdout)) : '') + text)
  return report.request.status.startsWith('HTTP ') ? 0 : 1
}

/** Both labs traced one after the other, each by its own mode; the table puts sidecar mode first. */
async function runCompare(flags: Flags, options: TraceOptions, other: string, io: Parameters<Command['run']>[1]): Promise<number> {
  for (const lab of [flags.lab, other]) if (!readState(lab)?.complete) throw new LabNotUpError(lab)
  const ambientLab = [flags.lab, other].filter((lab) => readState(lab)?.ambient)
  if (ambientLab.length !== 1) {
    const problem = ambientLab.length ? 'both are in ambient mode' : "neither is in ambient mode ('lab up --ambient')"
    throw new InvalidFlagError(`--compare needs one sidecar lab and one ambient lab: of ${flags.lab} and ${other}, ${problem}`)
  }
  const sidecarLab = ambientLab[0] === flags.lab ? other : flags.lab
  const sidecar = sidecarCounts(await runTrace({ ...options, lab: sidecarLab }))
  const ambient = ambientCounts(await runAmbientTrace({ ...options, lab: ambientLab[0]! }))
  io.stdout.write(
    flags.json
      ? JSON.stringify({ request: { from: flags.from, to: flags.to, port: flags.port }, sidecar, ambient }, null, 2) + '\n'
      : renderComparison(flags.from, flags.to, sidecar, ambient, terminalWidth(io.stdout)),
  )
  return sidecar.status.startsWith('HTTP ') && ambient.status.startsWith('HTTP ') ? 0 : 1
}
