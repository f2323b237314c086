#!/usr/bin/env node
// argv -> command. The only place that calls process.exit.
import type { CommandEntry, CommandIO } from './command.js'
import { SidecarError } from './errors.js'
import { cliCommand, recordInvocation } from './invocation.js'
import { flushLogs } from './logger.js'

// Each command's module is loaded when it runs, not before: the sidecar starts without reading the lab's, the
// trace's and the rule generator's modules (a third of the time to start, and descriptors at once).
const commands: CommandEntry[] = [
  {
    name: 'proxy',
    summary: 'run the sidecar: virtualOutbound on 15001, virtualInbound on 15006',
    load: async () => (await import('./proxy/command.js')).proxyCommand,
  },
  {
    name: 'iptables',
    summary: "generate and apply Istio's capture rules (istio-iptables' flags)",
    load: async () => (await import('./iptables/command.js')).iptablesCommand,
  },
  {
    name: 'inpod-rules',
    summary: "istio-cni's ambient rules: in-pod capture to ztunnel, or the node's probe SNAT",
    load: async () => (await import('./inpod/command.js')).inpodCommand,
  },
  {
    name: 'ztunnel',
    summary: "ambient mode's node proxy: serves every pod added to it from inside the pod's namespace",
    load: async () => (await import('./ambient/command.js')).ztunnelCommand,
  },
  {
    name: 'cni-agent',
    summary: "istio-cni's ZDS side: hands ztunnel each pod's network namespace (SCM_RIGHTS)",
    load: async () => (await import('./ambient/agent-command.js')).agentCommand,
  },
  {
    name: 'certs',
    summary: "the mesh's identities for HBONE: a lab CA, SPIFFE workload certificates, show one",
    load: async () => (await import('./ambient/certs-command.js')).certsCommand,
  },
  {
    name: 'lab',
    summary: 'pods as network namespaces with the sidecar: up, down, status, exec, logs, rules',
    load: async () => (await import('./lab/command.js')).labCommand,
  },
  {
    name: 'demo',
    summary: 'the lab end to end: up, one traced request, direct vs sidecar load, down',
    load: async () => (await import('./lab/demo.js')).demoCommand,
  },
  {
    name: 'trace',
    summary: 'send one request through the lab and show every chain, rule and sidecar hop it took',
    load: async () => (await import('./trace/command.js')).traceCommand,
  },
]

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  return [
    `usage: ${cliCommand('<command> [flags]')}`,
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run '${cliCommand('<command> --help')}' for a command's flags.`,
    '',
  ].join('\n')
}

async function main(argv: string[]): Promise<number> {
  recordInvocation(process.argv[1])
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name ? 0 : 2
  }
  const command = commands.find((c) => c.name === name)
  if (!command) {
    process.stderr.write(`error: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  const io: CommandIO = { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal }
  try {
    return await (await command.load()).run(rest, io)
  } catch (err) {
    if (err instanceof SidecarError) {
      process.stderr.write(`error: ${err.message}\n`)
      return 2
    }
    throw err
  }
}

main(process.argv.slice(2)).then(
  async (code) => {
    process.exitCode = code
    // The log lines still queued are written (or given up after a bounded wait), then we leave even if a
    // handle lingers. stdout and stderr themselves are synchronous for files and pipes on Linux.
    await flushLogs()
    process.exit(code)
  },
  (err: unknown) => {
    process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
