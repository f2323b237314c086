// The shape every subcommand has, so cli.ts can list, dispatch and report them uniformly.
import type { Writable } from 'node:stream'

export interface CommandIO {
  stdout: Writable
  stderr: Writable
  env: NodeJS.ProcessEnv
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT); long-running commands listen to it. */
  signal: AbortSignal
}

export interface Command {
  name: string
  /** Resolves to the exit code. A thrown SidecarError is printed as `error: <message>` with exit 2. */
  run(argv: string[], io: CommandIO): Promise<number>
}

/** What cli.ts lists: a command's name and summary; its module is loaded only when it runs. */
export interface CommandEntry {
  name: string
  summary: string
  load(): Promise<Command>
}
