// The command the user typed to run this CLI, for messages that tell them what to run next ("run '… lab up'
// first"). The package is private, so `sidecar-lab` is a command only where someone linked it (npm link):
// from a clone it is `node dist/cli.js`. cli.ts records how it was started; code that runs without it (unit
// tests, the bench scripts) keeps the program's name.
import { basename, delimiter, dirname, isAbsolute, relative } from 'node:path'
import { defaultLab } from './lab/state.js'

let invoked = 'sidecar-lab'

/** `script` is process.argv[1]: a path to cli.js, or a linked bin found on PATH. */
export function invocation(script: string | undefined, cwd: string, path: string): string {
  if (!script) return 'sidecar-lab'
  // Started by its name from PATH (npm link, a global install): that name works again.
  if (!script.endsWith('.js') && path.split(delimiter).includes(dirname(script))) return basename(script)
  const rel = relative(cwd, script)
  // relative when run from the clone (or below it); from / or elsewhere the whole path reads better
  const shown = cwd !== '/' && rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : script
  return `node ${/^[\w./@%+=:,-]+$/.test(shown) ? shown : `'${shown.replace(/'/g, "'\\''")}'`}`
}

export function recordInvocation(script: string | undefined, cwd = process.cwd(), path = process.env.PATH ?? ''): void {
  invoked = invocation(script, cwd, path)
}

/** A command line to suggest: `cliCommand('lab up', lab)` is "node dist/cli.js lab up", plus --lab unless the default. */
export function cliCommand(words: string, lab?: string): string {
  return `${invoked} ${words}${lab === undefined || lab === defaultLab ? '' : ` --lab ${lab}`}`
}

/** The program as messages name it ('sidecar-lab lab' -> 'node dist/cli.js lab'). */
export function runnable(command: string): string {
  return command.replace(/^sidecar-lab\b/, invoked)
}
