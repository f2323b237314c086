// The one place that creates pino loggers. Components take a child of the root logger so every line
// names the component it came from.
import { openSync } from 'node:fs'
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino'
import { LineWriter } from './line-writer.js'
import { formatLogLine, type LogFormat } from './log-format.js'

export type { Logger }

export interface LoggerOptions {
  level?: LevelWithSilent
  /** File descriptor or path; defaults to stderr so stdout stays free for command output. */
  destination?: number | string
  /** json (the default: pipes, files, tests) or text for a person at a terminal (src/log-format.ts) */
  format?: LogFormat
}

/** How long logger.flush() waits for queued lines; the log must never hold up an exit. */
const flushWaitMs = 500

/**
 * Not pino.destination: its sonic-boom loops forever (synchronously, also at exit) on a write that fails
 * with anything but EAGAIN, so a stderr that is a file on a full disk froze the sidecar. A LineWriter drops
 * what it cannot write (a full file, a closed pipe) and carries on; there is nowhere to report that loss.
 */
/** Every logger's writer, so the CLI can wait for their lines instead of sleeping before it exits. */
const writers = new Set<LineWriter>()

/** Waits (at most flushWaitMs) until every logger's queued lines are written or dropped. */
export async function flushLogs(): Promise<void> {
  await Promise.all([...writers].map((w) => w.flush(flushWaitMs)))
}

function destination(dest: number | string, format: LogFormat): DestinationStream & { flush(cb: (err?: Error) => void): void } {
  const writer = new LineWriter(typeof dest === 'number' ? dest : openSync(dest, 'a'))
  writers.add(writer)
  // the lines of the last moments (the "drained" line, a fatal error): one attempt, no retry
  process.once('exit', () => writer.flushOnce())
  return {
    write: (line: string) => void writer.write(format === 'text' ? formatLogLine(line) : line),
    flush: (cb) => void writer.flush(flushWaitMs).then(() => cb()),
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? 'info', base: { pid: process.pid } },
    destination(options.destination ?? 2, options.format ?? 'json'),
  )
}

/** A logger that writes nothing, for library use and tests that do not read logs. */
export const silentLogger: Logger = pino({ level: 'silent' })
