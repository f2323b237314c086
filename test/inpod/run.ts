// Runs `sidecar-lab inpod-rules` as cli.ts does, capturing stdout and stderr.
import { inpodCommand } from '../../src/inpod/command.js'
import { runCommand } from '../helpers/command-io.js'

export const runInpod = (argv: string[]) => runCommand(inpodCommand, argv)
