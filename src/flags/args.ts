// One wrapper over node:util parseArgs for every command but iptables (which reproduces pflag): it
// switches on the error's code, never on its wording, and names the flag from parseArgs' own tokens.
import { parseArgs } from 'node:util'
import { InvalidFlagError, UnknownFlagError } from '../errors.js'
import { quoteInput } from '../quote.js'
import { runnable } from '../invocation.js'

export interface FlagOption {
  type: 'string' | 'boolean'
  short?: string
  /** what the value is, for "--lab: give a value (--lab NAME)" */
  value?: string
}

export type FlagOptions = Record<string, FlagOption>

export type FlagValues<T extends FlagOptions> = { [K in keyof T]?: T[K]['type'] extends 'string' ? string : boolean }

export interface ParsedArgs<T extends FlagOptions> {
  values: FlagValues<T>
  positionals: string[]
}

/**
 * argv -> values. `command` is the name errors point at ('sidecar-lab lab'); positionals are refused
 * unless allowed (the caller then checks how many).
 */
export function parseCommandArgs<T extends FlagOptions>(
  argv: readonly string[],
  options: T,
  command: string,
  allowPositionals = false,
): ParsedArgs<T> {
  const config = toParseArgs(options)
  const args = joinDashValues(argv, options)
  try {
    const { values, positionals } = parseArgs({ args, options: config, strict: true, allowPositionals })
    return { values: values as FlagValues<T>, positionals }
  } catch (err) {
    throw explain((err as NodeJS.ErrnoException).code, args, options, command)
  }
}

function toParseArgs(options: FlagOptions) {
  return Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}) }]))
}

/**
 * parseArgs takes `--idle-timeout -5` for a flag followed by a second flag and answers "ambiguous"; a value
 * flag followed by something that is not a long flag gets that as its value, so -5 reaches the value's own
 * check and its message ("--outbound-port: -1 is not a port"). `--lab --json` stays a missing value.
 */
export function joinDashValues(argv: readonly string[], options: FlagOptions): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') return out.concat(argv.slice(i))
    const next = argv[i + 1]
    const takesValue = arg.startsWith('--') && options[arg.slice(2)]?.type === 'string'
    if (takesValue && next !== undefined && next.startsWith('-') && !next.startsWith('--')) {
      out.push(`${arg}=${next}`)
      i++
    } else out.push(arg)
  }
  return out
}

/** The error for a parseArgs failure, the offending argument found by a second, lenient pass. */
function explain(code: string | undefined, args: string[], options: FlagOptions, command: string): Error {
  const see = `(see '${runnable(command)} --help')`
  const { tokens } = parseArgs({ args, options: toParseArgs(options), strict: false, allowPositionals: true, tokens: true })
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const t = tokens.find((x) => x.kind === 'option' && !Object.hasOwn(options, x.name))
      return new UnknownFlagError(t?.kind === 'option' ? quoteFlag(t.rawName) : '?', command)
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      for (const t of tokens) {
        if (t.kind !== 'option') continue
        const o = options[t.name]
        if (o?.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
          return new InvalidFlagError(`--${t.name}: give a value (--${t.name} ${o.value ?? 'VALUE'})`)
        }
        if (o?.type === 'boolean' && t.value !== undefined) return new InvalidFlagError(`--${t.name} takes no value ${see}`)
      }
      break
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const t = tokens.find((x) => x.kind === 'positional')
      const what = t?.kind === 'positional' ? quoteInput(t.value) : 'an argument'
      return new InvalidFlagError(`unexpected argument ${what}: '${command}' takes only flags ${see}`)
    }
  }
  return new InvalidFlagError(`cannot read the flags of '${command}' ${see}`)
}

/** A flag name as typed, shown bare when it is plain, quoted when it carries anything else. */
function quoteFlag(raw: string): string {
  return /^--?[\w-]{1,60}$/.test(raw) ? raw : quoteInput(raw)
}
