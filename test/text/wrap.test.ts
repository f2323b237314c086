// The wrap helper the text renderers share: breaks at spaces, indents continuations, cuts only words
// that cannot fit, leaves short lines (tables) alone.
import t from 'tap'
import { columnsOf, terminalWidth, wrapLine, wrapText } from '../../src/text/wrap.js'

t.test('a line that fits comes back unchanged, inner spacing and all', async (t) => {
  t.same(wrapLine('  12  nat   -A ISTIO_REDIRECT', 80), ['  12  nat   -A ISTIO_REDIRECT'])
  t.same(wrapLine('', 10), [''])
})

t.test('a long line breaks at spaces, continuations indented 4 deeper than the line', async (t) => {
  const lines = wrapLine('  A: the sidecar opens a new connection to the original destination', 30)
  t.same(lines, ['  A: the sidecar opens a new', '      connection to the', '      original destination'])
  for (const l of lines) t.ok(l.length <= 30, `${JSON.stringify(l)} fits`)
})

t.test('a word longer than the width is cut, nothing is lost', async (t) => {
  const word = 'x'.repeat(25)
  const lines = wrapLine(`see ${word} here`, 10)
  for (const l of lines) t.ok(l.length <= 10, `${JSON.stringify(l)} fits`)
  t.equal(lines.join('').replace(/ +/g, ''), `see${word}here`)
})

t.test('an indent as wide as the terminal still makes progress and keeps half the width for text', async (t) => {
  const lines = wrapLine(`${' '.repeat(12)}one two three four`, 10)
  t.ok(lines.length > 1)
  t.equal(lines.map((l) => l.trim()).join(' '), 'one two three four')
  t.ok(
    lines.slice(1).every((l) => l.startsWith('     ') && !l.startsWith('      ')),
    'continuations indented width/2',
  )
})

t.test('wrapText wraps each line and keeps the final newline; width 0 or Infinity: no wrapping', async (t) => {
  t.equal(wrapText('aaa bbb ccc ddd\nshort\n', 12), 'aaa bbb ccc\n    ddd\nshort\n')
  t.equal(wrapText('aaa bbb ccc\n', Infinity), 'aaa bbb ccc\n')
  t.equal(wrapText('aaa bbb ccc\n', 0), 'aaa bbb ccc\n')
})

t.test("terminalWidth: a terminal's columns, 80 for anything else", async (t) => {
  t.equal(terminalWidth({ isTTY: true, columns: 132 }), 132)
  t.equal(terminalWidth({ isTTY: false, columns: 132 }), 80)
  t.equal(terminalWidth({}), 80)
  t.equal(terminalWidth(undefined), 80)
})

t.test('a URL too long for an indented line gets a line of its own, whole', async (t) => {
  const url = `https://example.test/${'a'.repeat(48)}`
  const lines = wrapLine(`source: see ${url} for more`, 70)
  t.ok(lines.includes(url), JSON.stringify(lines))
  for (const l of lines) t.ok(l.length <= 70)
})

t.test('wide (CJK) characters count two columns', async (t) => {
  t.equal(columnsOf('Istio 流量劫持原理'), 18)
  const lines = wrapLine('the walkthrough "Istio 流量劫持原理" (2020-05-29), numbering', 30)
  for (const l of lines) t.ok(columnsOf(l) <= 30, `${l} fits`)
})

t.test('a numbered or bulleted line continues under its text, not under its label', async (t) => {
  t.same(wrapLine(' 3. [w1]  productpage output ip nat ISTIO_REDIRECT redirect to :15001', 40), [
    ' 3. [w1]  productpage output ip nat',
    '          ISTIO_REDIRECT redirect to',
    '          :15001',
  ])
  t.same(wrapLine('- the app sees 127.0.0.6 as its peer', 20), ['- the app sees', '  127.0.0.6 as its', '  peer'])
})
