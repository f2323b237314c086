#!/usr/bin/env node
// argv -> command. The only place that calls process.exit.
import type { Command, CommandIO } from './command.js'
import { SidecarError } from './errors.js'
import { cliCommand, recordInvocation } from './invocation.js'
import { flushLogs } from './logger.js'
import { inpodCommand } from './inpod/command.js'
import { iptablesCommand } from './iptables/command.js'
import { labCommand } from './lab/command.js'
import { demoCommand } from './lab/demo.js'
import { proxyCommand } from './proxy/command.js'
import { traceCommand } from './trace/command.js'

const commands: Command[] = [proxyCommand, iptablesCommand, inpodCommand, labCommand, demoCommand, traceCommand]

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
    return await command.run(rest, io)
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
