// Prose wrapped to the reader's terminal. Reports are built as long logical lines (an answer is one line,
// a hop is one line); this breaks them at spaces so a person can read them in an 80-column window, while
// --json and --svg keep the long form. A continued line is indented under its first line, a little
// deeper, so the eye can tell a continuation from the next item.

/** Extra indentation of a continued line, beyond the line's own. */
const defaultHang = 4
/** Help text stays under 100 columns whatever the terminal: it is read in editors and READMEs too. */
export const helpWidth = 99
/** Width when the output is not a terminal (a pipe, a file, a test). */
export const defaultWidth = 80

/** The width to wrap to: the terminal's columns, or defaultWidth when the stream is not a terminal. */
export function terminalWidth(stream: object | undefined): number {
  const tty = stream as { isTTY?: boolean; columns?: number } | undefined
  if (tty?.isTTY && tty.columns && tty.columns > 0) return tty.columns
  return defaultWidth
}

/** East Asian wide characters (CJK, Hangul, fullwidth forms) take two columns of a terminal. */
const wide = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/

/** The columns text takes on a terminal. */
export function columnsOf(text: string): number {
  let n = 0
  for (const ch of text) n += wide.test(ch) ? 2 : 1
  return n
}

/** The longest start of word that fits in room columns (at least one character, so a cut always advances). */
function cut(word: string, room: number): [string, string] {
  let n = 0
  let i = 0
  for (const ch of word) {
    n += columnsOf(ch)
    if (n > room && i > 0) break
    i += ch.length
  }
  return [word.slice(0, i), word.slice(i)]
}

/**
 * One line as lines no wider than width. Breaks at spaces (the spaces at a break are dropped); a word
 * wider than the room left goes on a line of its own, unindented if that makes it fit (a URL stays whole to
 * copy), else cut. A line that fits comes back as it is, its inner spacing kept.
 */
export function wrapLine(line: string, width: number, hang = defaultHang): string[] {
  if (!Number.isFinite(width) || width <= 0 || columnsOf(line) <= width) return [line]
  const own = /^ */.exec(line)![0].length
  // a deep indent on a narrow terminal would leave no room: at least half the width stays for text
  const half = Math.floor(width / 2)
  const indent = ' '.repeat(Math.min(own, half))
  // a numbered or bulleted line ("12. [w3]  text", "- text") continues under its text, not under its label
  const label = /^ *(?:\d+\.|[-*]) +(?:\[[^\]]*\] +)?/.exec(line)?.[0].length
  const next = ' '.repeat(Math.min(label ?? own + hang, half))
  const out: string[] = []
  let current = indent
  let used = indent.length
  let fresh = true // current holds only its indentation
  const push = () => {
    out.push(current)
    current = next
    used = next.length
    fresh = true
  }
  for (const [, gap, found] of line.slice(own).matchAll(/( *)(\S+)/g)) {
    let word = found!
    let cols = columnsOf(word)
    if (!fresh && used + gap!.length + cols > width) push()
    if (fresh && used + cols > width && cols <= width) {
      out.push(word)
      continue
    }
    if (!fresh) {
      current += gap
      used += gap!.length
    }
    while (used + cols > width) {
      const [head, rest] = cut(word, width - used)
      current += head
      push()
      word = rest
      cols = columnsOf(word)
    }
    current += word
    used += cols
    fresh = false
  }
  if (!fresh) out.push(current)
  return out
}

/** A table row: prefix (the first column, padded), then text wrapped to width under the text's start. */
export function wrapHanging(prefix: string, text: string, width: number): string[] {
  return wrapLine(text, width - prefix.length, 0).map((l, i) => (i ? ' '.repeat(prefix.length) : prefix) + l)
}

/** Every line of text wrapped to width (see wrapLine); the text's final newline is kept. */
export function wrapText(text: string, width: number): string {
  return text
    .split('\n')
    .flatMap((l) => wrapLine(l, width))
    .join('\n')
}
