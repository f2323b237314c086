import t from 'tap'
import { quoteInput } from '../../src/quote.js'

t.test('input in messages is quoted with control characters and terminal escapes escaped', async (t) => {
  t.equal(quoteInput('reviews=198.18.0.2'), '"reviews=198.18.0.2"')
  t.equal(quoteInput('\x1b[2J\x07\x00"\\'), '"\\u001b[2J\\u0007\\u0000\\"\\\\"')
  t.equal(quoteInput('\x7f\x9b1m\u202e\u2028'), '"\\u007f\\u009b1m\\u202e\\u2028"')
  t.equal(quoteInput('ünïcode ✓'), '"ünïcode ✓"', 'printable text stays readable')
})

t.test('long input is cut at a code point boundary and says how long it was', async (t) => {
  t.equal(quoteInput('a'.repeat(80)), `"${'a'.repeat(80)}"`)
  t.equal(quoteInput('a'.repeat(81)), `"${'a'.repeat(80)}"… (81 characters)`)
  t.equal(quoteInput('😀'.repeat(5), 3), '"😀😀😀"… (5 characters)', 'no half surrogate pair')
})
