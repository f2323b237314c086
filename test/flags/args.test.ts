// parseCommandArgs: each parseArgs failure becomes an error naming the flag and what is wrong with it.
import t from 'tap'
import { joinDashValues, parseCommandArgs } from '../../src/flags/args.js'

const options = {
  lab: { type: 'string', value: 'NAME' },
  timeout: { type: 'string', value: 'DURATION' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const
const parse = (argv: string[], positionals = false) => parseCommandArgs(argv, options, 'sidecar-lab x', positionals)

t.test('values and positionals come through', async (t) => {
  const r = parse(['--lab', 'one', '--json', '-h', 'pos'], true)
  t.same(r.values, { lab: 'one', json: true, help: true })
  t.same(r.positionals, ['pos'])
  t.same(parse(['--lab=two']).values, { lab: 'two' })
})

t.test('an unknown flag is named as unknown, plain or quoted', async (t) => {
  t.throws(() => parse(['--bogus']), {
    code: 'SIDECAR_ERR_UNKNOWN_FLAG',
    message: "unknown flag --bogus for 'sidecar-lab x' (see 'sidecar-lab x --help')",
  })
  t.throws(() => parse(['--lab', 'a', '-z']), { code: 'SIDECAR_ERR_UNKNOWN_FLAG', message: /^unknown flag -z for/ })
  t.throws(() => parse(['--bo\u001b[2Jgus']), { code: 'SIDECAR_ERR_UNKNOWN_FLAG', message: /^unknown flag "--bo\\u001b\[2Jgus" for/ })
})

t.test('a known flag with its value missing says to give one, not that the flag is unknown', async (t) => {
  const missing = { code: 'SIDECAR_ERR_INVALID_FLAG', message: '--lab: give a value (--lab NAME)' }
  t.throws(() => parse(['--lab']), missing, 'at the end')
  t.throws(() => parse(['--lab', '--json']), missing, 'followed by another flag')
  t.throws(() => parse(['--json', '--timeout']), { message: '--timeout: give a value (--timeout DURATION)' })
})

t.test('a boolean flag given a value is refused', async (t) => {
  t.throws(() => parse(['--json=yes']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: "--json takes no value (see 'sidecar-lab x --help')" })
})

t.test('a stray argument is named, where none is taken', async (t) => {
  t.throws(() => parse(['--json', 'stray']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: `unexpected argument "stray": 'sidecar-lab x' takes only flags (see 'sidecar-lab x --help')`,
  })
})

t.test('a value starting with one dash reaches the value check', async (t) => {
  t.same(parse(['--timeout', '-5', '--json']).values, { timeout: '-5', json: true })
  t.same(joinDashValues(['--timeout', '-5', '--', '--lab', '-x'], options), ['--timeout=-5', '--', '--lab', '-x'], 'not after --')
  t.same(joinDashValues(['--json', '-h'], options), ['--json', '-h'], 'a boolean takes no value')
})
