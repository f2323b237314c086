// Runs `sidecar-lab inpod-rules` as cli.ts does, capturing stdout and stderr.
import { Writable } from 'node:stream'
import type { CommandIO } from '../../src/command.js'
import { inpodCommand } from '../../src/inpod/command.js'

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

export async function runInpod(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink()
  const stderr = sink()
  const io: CommandIO = { stdout, stderr, env: {}, signal: new AbortController().signal }
  const code = await inpodCommand.run(argv, io)
  return { code, stdout: stdout.text, stderr: stderr.text }
}
