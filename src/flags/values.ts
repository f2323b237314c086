// The value parsers every command's flags share: port, integer, duration, bytes, address, one-of, URL.
// Each throws InvalidFlagError naming the flag, with the value quoted by quoteInput (so a value full of
// terminal escapes cannot act on the terminal). The read* functions only answer a value or undefined, for
// the iptables parser, which words its errors as pflag does.
import { isIP } from 'node:net'
import { InvalidFlagError } from '../errors.js'
import { quoteInput } from '../quote.js'

const wholeNumber = /^-?\d+$/

/** A decimal port 1-65535, at most five digits (as istio-iptables reads one), else undefined. */
export function readPort(text: string): number | undefined {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  return n >= 1 && n <= 65535 ? n : undefined
}

/** A decimal whole number from min to max, else undefined. */
export function readInteger(text: string, min: number, max: number): number | undefined {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN
  return n >= min && n <= max ? n : undefined
}

/** An IP address (of the given family), else undefined. */
export function readAddress(text: string, family?: 4 | 6): string | undefined {
  const got = isIP(text)
  return got !== 0 && (!family || got === family) ? text : undefined
}

/** Why Linux would refuse an interface name (dev_valid_name: at most 15 bytes, not '.' or '..', no '/', ':' or whitespace), or ''. */
export function interfaceNameProblem(nic: string): string {
  if (Buffer.byteLength(nic) > 15) return 'longer than 15 bytes (IFNAMSIZ)'
  if (nic === '.' || nic === '..') return "'.' and '..' are not interface names"
  if (/[/:\s]/.test(nic)) return "contains '/', ':' or whitespace"
  return ''
}

export function integer(flag: string, text: string | undefined, fallback: number, min: number, max: number, what?: string): number {
  if (text === undefined) return fallback
  if (!wholeNumber.test(text.trim())) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a whole number`)
  const n = Number(text)
  if (n < min || n > max) throw new InvalidFlagError(`--${flag}: ${n} ${what ?? `is out of range (${min} to ${max})`}`)
  return n
}

/** A port 1-65535 (a flag where 0 disables uses integer(..., 0, 65535)). */
export function port(flag: string, text: string | undefined, fallback: number): number {
  if (text !== undefined && !wholeNumber.test(text.trim()))
    throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a port (1-65535)`)
  return integer(flag, text, fallback, 1, 65535, 'is not a port (1-65535)')
}

export function address(flag: string, text: string, family?: 4 | 6): string {
  if (readAddress(text, family) === undefined) {
    throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not an IP${family ? `v${family}` : ''} address`)
  }
  return text
}

/** A number with an optional fraction, within [min, max] (min excluded when exclusiveMin). */
export function decimal(flag: string, text: string | undefined, fallback: number, min: number, max: number, exclusiveMin = false): number {
  if (text === undefined) return fallback
  const n = /^-?\d+(?:\.\d+)?$/.test(text.trim()) ? Number(text) : NaN
  const range = `${exclusiveMin ? 'more than' : 'from'} ${min} ${exclusiveMin ? 'and at most' : 'to'} ${max}`
  if (Number.isNaN(n)) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a number (${range})`)
  if (n > max || n < min || (exclusiveMin && n === min)) throw new InvalidFlagError(`--${flag}: ${n} is out of range (${range})`)
  return n
}

/** A comma-separated list of allowed values (at least one), in the order given. */
export function listOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const chosen = text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  if (chosen.length === 0) throw new InvalidFlagError(`--${flag}: give one or more of ${allowed.join(', ')}`)
  const unknown = chosen.filter((x) => !(allowed as readonly string[]).includes(x))
  if (unknown.length) {
    const named = unknown.map((x) => quoteInput(x)).join(', ')
    throw new InvalidFlagError(`--${flag}: ${named} ${unknown.length === 1 ? 'is' : 'are'} not among ${allowed.join(', ')}`)
  }
  return chosen as T[]
}

export function oneOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not one of ${allowed.join(', ')}`)
  }
  return text as T
}

export function httpUrl(flag: string, text: string | undefined): string | null {
  if (text === undefined || text === '') return null
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a URL (http://127.0.0.1:9090/metrics)`)
  }
  if (url.protocol !== 'http:') throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} must be an http:// URL`)
  return url.href
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, '': 1000 }

/** 500ms, 10s, 5m, 1h; a bare number is seconds. At most setTimeout's limit (about 24 days). */
export function duration(flag: string, text: string | undefined, fallback: number, zeroAllowed: boolean): number {
  if (text === undefined) return fallback
  const t = text.trim()
  // shown bare: the pattern lets no other character through
  if (/^-\d+(?:\.\d+)?(ms|s|m|h|)$/.test(t))
    throw new InvalidFlagError(`--${flag}: ${t} is negative (${zeroAllowed ? '0 or more' : 'more than 0'}: 500ms, 10s, 5m, 1h)`)
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|)$/.exec(t)
  if (!m) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a duration (500ms, 10s, 5m, 1h)`)
  const ms = Math.round(Number(m[1]) * durationUnits[m[2]!]!)
  if (ms === 0 && !zeroAllowed) throw new InvalidFlagError(`--${flag}: must be more than 0`)
  if (ms > 2_147_483_647) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is too long (at most about 24 days)`)
  return ms
}

const byteUnits: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }

/** 65536, 64Ki, 1Mi: from 1Ki to 1Gi. */
export function bytes(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const t = text.trim()
  if (/^-\d+(Ki|Mi|Gi|KiB|MiB|GiB|)$/.test(t)) throw new InvalidFlagError(`--${flag}: ${t} is negative (1Ki to 1Gi: 65536, 64Ki, 1Mi)`)
  const m = /^(\d+)(Ki|Mi|Gi|KiB|MiB|GiB|)$/.exec(t)
  if (!m) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is not a size (65536, 64Ki, 1Mi)`)
  const n = Number(m[1]) * byteUnits[m[2]!]!
  if (n < 1024 || n > 1024 ** 3) throw new InvalidFlagError(`--${flag}: ${n} bytes is out of range (1Ki to 1Gi)`)
  return n
}
