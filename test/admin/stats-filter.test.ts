// ?filter= compiles with RE2's syntax and semantics, within a length limit and a program-size limit that is
// checked before anything is built.
import { RE2JS } from 're2js'
import t from 'tap'
import { InvalidStatsFilterError } from '../../src/errors.js'
import { compileFilter, maxFilterLength, programEstimate } from '../../src/admin/stats-filter.js'

const name = 'listener.127.0.0.1_15001.downstream_cx_total'

t.test('RE2 partial match: anywhere in the name, ^ and $ anchor, (?i), \\pN and (?P<name>) accepted', async (t) => {
  t.ok(compileFilter('downstream').test(name))
  t.notOk(compileFilter('^downstream').test(name))
  t.ok(compileFilter('cx_total$').test(name))
  t.ok(compileFilter('(?i)^LISTENER\\.').test(name))
  t.ok(compileFilter('_\\pN+\\.').test(name))
  t.ok(compileFilter('(?P<kind>listener)').test(name))
})

t.test('a pattern that backtracks exponentially in JavaScript answers at once', async (t) => {
  const f = compileFilter('^listener\\.([\\w.]+)+!')
  t.notOk(f.test(name + '.x'.repeat(5000)))
  t.ok(compileFilter('^listener\\.([\\w.]+)+$').test(name))
})

t.test("what RE2 refuses is an InvalidStatsFilterError with RE2's reason", async (t) => {
  for (const [p, reason] of [
    ['(a)\\1', 'invalid escape sequence: `\\1`'],
    ['(?=x)', 'invalid or unsupported Perl syntax: `(?=`'],
    ['(?!x)y', 'invalid or unsupported Perl syntax: `(?!`'],
    ['[z-a]', 'invalid character class range: `z-a`'],
    ['a**', 'invalid nested repetition operator: `**`'],
    ['x{1001}', 'invalid repeat count: `{1001}`'],
  ]) {
    t.throws(() => compileFilter(p!), { name: 'InvalidStatsFilterError', code: 'SIDECAR_ERR_INVALID_FILTER', message: reason! }, p!)
  }
})

t.test(`longer than ${maxFilterLength} characters: refused before compiling`, async (t) => {
  t.ok(compileFilter('x'.repeat(maxFilterLength)).test('x'.repeat(maxFilterLength)))
  t.throws(
    () => compileFilter('x'.repeat(maxFilterLength + 1)),
    new InvalidStatsFilterError(`the pattern is ${maxFilterLength + 1} characters long; at most ${maxFilterLength} are accepted`),
  )
})

t.test('repetitions that expand past the program limit are refused; ordinary ones pass', async (t) => {
  t.throws(() => compileFilter('.{0,1000}'.repeat(20)), { code: 'SIDECAR_ERR_INVALID_FILTER', message: /too large/ })
  t.throws(() => compileFilter('((ab){10}){10}'.repeat(30)), { message: /too large/ })
  t.ok(compileFilter('.{1000}'), 'one counted repeat of 1000, as RE2 allows')
  t.ok(compileFilter('^(cluster|listener|tcp)\\.[^.]+\\.(upstream|downstream)_cx_(total|active)$'))
})

t.test('the estimate is never below the program re2js builds', async (t) => {
  const patterns = [
    'abc',
    '.{1000}',
    '.{0,1000}',
    '(a|b){3,7}',
    '((ab){10}){10}',
    '(?:x{2}){2}',
    '[a-z]{5,}',
    'a{2,}b+c*d?',
    '\\Q(a){9}\\E{9}',
    '[[:alpha:]\\]{]{100}',
    '\\p{Greek}{50}',
    '\\x{41}{20}',
    '(?P<n>a{10}){10}',
    '(a)(b)(c)|d{40}',
    '^cluster\\.([\\w.]+)+!',
    '(?i)abc{30}',
    'a|b|c|d',
    '((((a{2}){2}){2}){2}){2}',
  ]
  for (const p of patterns) {
    const built = RE2JS.compile(p).programSize()
    t.ok(programEstimate(p) >= built, `${p}: estimate ${programEstimate(p)} >= ${built}`)
  }
})
