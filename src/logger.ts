// The one place that creates pino loggers. Components take a child of the root logger so every line
// names the component it came from.
import { pino, type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level?: LevelWithSilent
  /** File descriptor or path; defaults to stderr so stdout stays free for command output. */
  destination?: number | string
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = pino.destination({ dest: options.destination ?? 2, sync: false })
  return pino({ level: options.level ?? 'info', base: { pid: process.pid } }, destination)
}

/** A logger that writes nothing, for library use and tests that do not read logs. */
export const silentLogger: Logger = pino({ level: 'silent' })
