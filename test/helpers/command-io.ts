// Runs a command as cli.ts does, in-process, capturing what it writes to stdout and stderr.
import { Writable } from 'node:stream'
import type { Command, CommandIO } from '../../src/command.js'

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _enc, done) {
      w.text += String(chunk)
      done()
    },
  }) as Writable & { text: string }
  w.text = ''
  return w
}

export async function runCommand(
  command: Command,
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink()
  const stderr = sink()
  const io: CommandIO = { stdout, stderr, env, signal: new AbortController().signal }
  const code = await command.run(argv, io)
  return { code, stdout: stdout.text, stderr: stderr.text }
}
