// pino's JSON lines as lines a person reads: `12:04:05.123 INFO  iptables: rules applied target=ns backend=x`.
// JSON stays the format of pipes and files (tests and tools parse it); text is for a terminal. No
// pino-pretty: one line in, one line out, on the same non-blocking writer (src/line-writer.ts).
import { InvalidFlagError } from './errors.js'
import { quoteInput } from './quote.js'

export type LogFormat = 'json' | 'text'
export const logFormats: readonly LogFormat[] = ['json', 'text']
export const logFormatEnv = 'SIDECAR_LAB_LOG_FORMAT'
/** for the help of every command that logs */
export const logFormatHelp = `json or text (default text on a terminal, json otherwise; env ${logFormatEnv})`

/** a field's value longer than this is cut in the text form: a line stays about one line */
const maxValue = 60
const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** in every line or in the line's head already: not repeated as key=value */
const omitted = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v', 'component'])

/**
 * The format a command logs in: the flag, else $SIDECAR_LAB_LOG_FORMAT, else text when stderr is a
 * terminal and json when it is a pipe or a file.
 */
export function resolveLogFormat(flag: string | undefined, env: NodeJS.ProcessEnv, stderr: object): LogFormat {
  if (flag !== undefined) return checked(flag, '--log-format')
  const fromEnv = env[logFormatEnv]
  if (fromEnv) return checked(fromEnv, logFormatEnv)
  return (stderr as { isTTY?: boolean }).isTTY ? 'text' : 'json'
}

function checked(value: string, name: string): LogFormat {
  if ((logFormats as readonly string[]).includes(value)) return value as LogFormat
  throw new InvalidFlagError(`${name}: expected json or text, not ${quoteInput(value)}`)
}

function clock(ms: number): string {
  const d = new Date(ms)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)
  if (v && typeof v === 'object' && 'message' in v && typeof (v as { message: unknown }).message === 'string') {
    // pino's err serializer: the message (and its code) say what happened; the stack is in the JSON form
    const e = v as { message: string; code?: unknown }
    return JSON.stringify(e.code ? `${String(e.code)}: ${e.message}` : e.message)
  }
  // a list of plain words reads as one; anything else as compact JSON, cut short (the JSON form has it whole)
  const words = Array.isArray(v) && v.every((x) => typeof x === 'number' || (typeof x === 'string' && /^[^\s,"=]+$/.test(x)))
  const text = words ? v.join(',') : (JSON.stringify(v) ?? String(v))
  return text.length > maxValue ? `${text.slice(0, maxValue - 1)}…` : text
}

/**
 * One pino JSON line as a text line (with its newline). A line that is not pino's JSON (an older log,
 * text already) comes back unchanged, so a mixed file reads whole.
 */
export function formatLogLine(line: string): string {
  const body = line.endsWith('\n') ? line.slice(0, -1) : line
  let rec: Record<string, unknown>
  try {
    rec = JSON.parse(body) as Record<string, unknown>
  } catch {
    return line
  }
  if (!rec || typeof rec !== 'object' || typeof rec.level !== 'number' || typeof rec.time !== 'number') return line
  const level = (levels[rec.level] ?? String(rec.level)).padEnd(5)
  const who = typeof rec.component === 'string' ? `${rec.component}: ` : ''
  const fields = Object.entries(rec)
    .filter(([k, v]) => !omitted.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`)
  const msg = typeof rec.msg === 'string' ? rec.msg : ''
  return `${[clock(rec.time), level, `${who}${msg}`, ...fields].join(' ')}\n`
}
