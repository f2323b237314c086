// ?filter= is a pattern from whoever reaches 15090/15020 (every address, never captured) or 15000. Envoy runs
// it with RE2; so do we, with re2js (a pure-JS port of RE2/J: same syntax, matching in time linear in the name,
// no backreferences or lookaround), so no pattern can hold the event loop the way a backtracking RegExp can.
// Node's own linear engine (--enable-experimental-regexp-engine, the `l` flag) was the alternative: it is
// experimental, needs a V8 flag set before any pattern is compiled, and keeps JavaScript's syntax, not RE2's.
// re2js builds its program in JavaScript, so its size is bounded before compiling (RE2 itself stops at
// max_mem): .{0,1000} twenty times over would take a second of CPU per request to build.
import { RE2JS, RE2JSException } from 're2js'
import { InvalidStatsFilterError } from '../errors.js'

/** Longest pattern accepted, in characters. */
export const maxFilterLength = 1024
/** Largest accepted estimate of the compiled program, in instructions (RE2's own measure of a regex's cost). */
export const maxFilterProgram = 5000

/** What a stats selection needs of a pattern: does it match anywhere in the name (RE2's PartialMatch). */
export interface NameFilter {
  test(name: string): boolean
}

/** Compiles a user's pattern with RE2 semantics; throws InvalidStatsFilterError naming what is wrong. */
export function compileFilter(pattern: string): NameFilter {
  if (pattern.length > maxFilterLength) {
    throw new InvalidStatsFilterError(`the pattern is ${pattern.length} characters long; at most ${maxFilterLength} are accepted`)
  }
  const estimate = programEstimate(pattern)
  if (estimate > maxFilterProgram) {
    throw new InvalidStatsFilterError(`the pattern is too large: its repetitions expand to more than ${maxFilterProgram} instructions`)
  }
  try {
    return RE2JS.compile(pattern)
  } catch (err) {
    if (err instanceof RE2JSException) throw new InvalidStatsFilterError(err.message, err)
    throw err
  }
}

interface Frame {
  total: number
  /** size of the last atom, which a following repetition multiplies */
  last: number
}

const counted = /^\{(\d+)(,(\d*))?\}/

/**
 * An upper bound on the instructions RE2 compiles for `pattern`, read from its text without building it: an
 * atom counts 1 (a class, an escape, a literal), a group the sum of its contents plus 2, and {n,m} copies the
 * atom before it max(n, m) times, each copy with an alternation, as RE2's simplification expands it. It errs
 * high (group flags and names count as atoms); the syntax itself is checked by RE2 afterwards.
 */
export function programEstimate(pattern: string): number {
  const stack: Frame[] = [{ total: 0, last: 0 }]
  const atom = (size: number) => {
    const f = stack[stack.length - 1]!
    f.total += size
    f.last = size
  }
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]!
    const f = stack[stack.length - 1]!
    if (c === '\\') {
      i = escapeEnd(pattern, i, atom)
      continue
    }
    if (c === '[') {
      i = classEnd(pattern, i)
      atom(1)
      continue
    }
    if (c === '(') {
      stack.push({ total: 0, last: 0 })
    } else if (c === ')' && stack.length > 1) {
      stack.pop()
      atom(f.total + 2)
    } else if (c === '|') {
      f.total += 1
      f.last = 0
    } else if (c === '*' || c === '+' || c === '?') {
      f.total += 1
    } else if (c === '{' && counted.test(pattern.slice(i, i + 16))) {
      const m = counted.exec(pattern.slice(i, i + 16))!
      const min = Number(m[1])
      const max = m[2] === undefined ? min : m[3] === '' ? min + 1 : Number(m[3])
      // Counts above 1000 are RE2's to reject with its own message; clamp so the estimate does not pre-empt it.
      const n = Math.min(Math.max(min, max), 1000)
      // n copies of the atom, each with the alternation that makes it optional
      const size = (f.last + 2) * n
      f.total += size - f.last
      f.last = size
      i += m[0].length
      continue
    } else {
      atom(1)
    }
    i++
  }
  // Unclosed groups (a syntax error RE2 reports) still count; 2 for the program's own fail and match.
  return stack.reduce((sum, fr) => sum + fr.total, 2)
}

/** Skips one escape (\Q...\E counts each quoted character as an atom); returns the index after it. */
function escapeEnd(p: string, i: number, atom: (size: number) => void): number {
  const next = p[i + 1]
  if (next === 'Q') {
    const end = p.indexOf('\\E', i + 2)
    const stop = end < 0 ? p.length : end
    for (let k = i + 2; k < stop; k++) atom(1)
    return end < 0 ? p.length : end + 2
  }
  atom(1)
  if ((next === 'p' || next === 'P' || next === 'x') && p[i + 2] === '{') {
    const close = p.indexOf('}', i + 3)
    return close < 0 ? p.length : close + 1
  }
  return i + 2
}

/** Index after a character class [...], including [:alpha:] and escapes inside it. */
function classEnd(p: string, i: number): number {
  let j = i + 1
  if (p[j] === '^') j++
  if (p[j] === ']') j++
  while (j < p.length && p[j] !== ']') {
    if (p[j] === '\\') j += 2
    else if (p.startsWith('[:', j)) {
      const close = p.indexOf(':]', j + 2)
      j = close < 0 ? j + 1 : close + 2
    } else j++
  }
  return j + 1
}
