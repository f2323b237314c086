// lab logs: a pod's sidecar log, access log and app log. The sidecar writes pino's JSON to its file (it is
// not a terminal); here a person reads it, so each JSON line is shown as a text line (src/log-format.ts),
// unless --json asks for the lines as written. The access log is Istio's format and passes unchanged.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs'
import { formatLogLine } from '../log-format.js'

export const podLogFiles = ['sidecar.log', 'access.log', 'app.log'] as const

/** How often -f looks for new lines: a person reading, not a benchmark. */
const followPollMs = 250

export interface LogsOptions {
  json: boolean
}

/** Complete lines of a file's text, formatted; the unfinished last line is returned as rest. */
export function renderLogText(text: string, o: LogsOptions): { out: string; rest: string } {
  const end = text.lastIndexOf('\n') + 1
  const lines = text.slice(0, end).split(/(?<=\n)/)
  const out = o.json ? text.slice(0, end) : lines.map((l) => (l ? formatLogLine(l) : '')).join('')
  return { out, rest: text.slice(end) }
}

function readFrom(path: string, offset: number): { text: string; size: number } {
  const size = statSync(path).size
  if (size <= offset) return { text: '', size }
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.alloc(size - offset)
    const n = readSync(fd, buf, 0, buf.length, offset)
    return { text: buf.subarray(0, n).toString('utf8'), size: offset + n }
  } finally {
    closeSync(fd)
  }
}

/**
 * Prints each file (a `==> path <==` header, then its lines); with follow, keeps printing the lines
 * appended to any of them, under a new header when the file changes, until signal aborts. A file cut
 * short (logrotate copytruncate) is read again from its start.
 */
export async function showLogs(
  paths: string[],
  o: LogsOptions & { follow: boolean; signal: AbortSignal },
  write: (text: string) => void,
): Promise<void> {
  const seen = new Map<string, { offset: number; rest: string }>()
  let last = ''
  const drain = (path: string, first: boolean) => {
    if (!existsSync(path)) return
    const at = seen.get(path) ?? { offset: 0, rest: '' }
    if (statSync(path).size < at.offset) Object.assign(at, { offset: 0, rest: '' })
    const { text, size } = readFrom(path, at.offset)
    at.offset = size
    seen.set(path, at)
    const { out, rest } = renderLogText(at.rest + text, o)
    at.rest = rest
    // without -f an unfinished last line is still shown: nothing more will come to finish it
    const shown = first && !o.follow ? out + (rest ? `${rest}\n` : '') : out
    if (!shown && !first) return
    if (last !== path) write(`${last ? '\n' : ''}==> ${path} <==\n`)
    last = path
    write(shown)
  }
  for (const p of paths) drain(p, true)
  if (!o.follow) return
  await new Promise<void>((resolve) => {
    if (o.signal.aborted) return resolve()
    const timer = setInterval(() => {
      for (const p of paths) drain(p, false)
    }, followPollMs)
    o.signal.addEventListener(
      'abort',
      () => {
        clearInterval(timer)
        resolve()
      },
      { once: true },
    )
  })
}
