// User input shown inside an error message: quoted as JSON quotes strings, so control characters and
// terminal escapes (a registry file of binary garbage, ESC [2J) appear as \u001b text instead of acting on
// the terminal, and cut short so one huge line cannot flood it.
const unsafe = /[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g

export function quoteInput(text: string, max = 80): string {
  const chars = Array.from(text) // code points, so a cut never splits a surrogate pair
  const cut = chars.length > max ? chars.slice(0, max).join('') : text
  // JSON.stringify escapes U+0000-U+001F, quotes, backslashes and lone surrogates; C1 controls (U+009B is
  // a CSI on some terminals), DEL and invisible or bidirectional formatting characters are escaped here.
  const quoted = JSON.stringify(cut).replace(unsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return chars.length > max ? `${quoted}… (${chars.length} characters)` : quoted
}
