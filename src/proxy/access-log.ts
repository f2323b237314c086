// One line per proxied connection at close, in Istio's default text format (TCP fields, HTTP fields
// as '-') or as JSON with the same fields under Envoy's command-operator names.
import { openSync } from 'node:fs'
import { AccessLogError } from '../errors.js'
import { LineWriter } from '../line-writer.js'
import type { Logger } from '../logger.js'
import type { AccessLogFormat } from './config.js'
import type { Counter, Gauge, Stats } from '../stats/stats.js'

export interface AccessLogEntry {
  startTime: Date
  /** comma-joined Envoy response flags (UF,URX / NR / UO / UH / DT), '-' when none */
  responseFlags: string
  connectionTerminationDetails: string
  upstreamTransportFailureReason: string
  bytesReceived: number
  bytesSent: number
  durationMs: number
  upstreamHost: string
  upstreamCluster: string
  upstreamLocalAddress: string
  downstreamLocalAddress: string
  downstreamRemoteAddress: string
}

/** Envoy replaces spaces in the failure reason with underscores so the text line stays splittable. */
function token(value: string): string {
  return value === '' ? '-' : value.replaceAll(' ', '_')
}

export function formatText(e: AccessLogEntry): string {
  return (
    `[${e.startTime.toISOString()}] "- - -" 0 ${token(e.responseFlags)} - ${token(e.connectionTerminationDetails)} ` +
    `"${token(e.upstreamTransportFailureReason)}" ${e.bytesReceived} ${e.bytesSent} ${e.durationMs} - "-" "-" "-" "-" ` +
    `"${e.upstreamHost}" ${e.upstreamCluster} ${e.upstreamLocalAddress} ${e.downstreamLocalAddress} ` +
    `${e.downstreamRemoteAddress} - -`
  )
}

export function formatJson(e: AccessLogEntry): string {
  return JSON.stringify({
    start_time: e.startTime.toISOString(),
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: token(e.responseFlags),
    response_code_details: null,
    connection_termination_details: e.connectionTerminationDetails || null,
    upstream_transport_failure_reason: e.upstreamTransportFailureReason || null,
    bytes_received: e.bytesReceived,
    bytes_sent: e.bytesSent,
    duration: e.durationMs,
    upstream_service_time: null,
    x_forwarded_for: null,
    user_agent: null,
    request_id: null,
    authority: null,
    upstream_host: e.upstreamHost === '-' ? null : e.upstreamHost,
    upstream_cluster: e.upstreamCluster,
    upstream_local_address: e.upstreamLocalAddress === '-' ? null : e.upstreamLocalAddress,
    downstream_local_address: e.downstreamLocalAddress,
    downstream_remote_address: e.downstreamRemoteAddress,
    requested_server_name: null,
    route_name: null,
  })
}

export interface AccessLogSink {
  write(entry: AccessLogEntry): void
  /** SIGHUP: open the path again (after log rotation); on failure keep writing to the old file */
  reopen(): void
  /** the drain's last step: wait (boundedly) for queued lines, then close */
  close(): Promise<void>
}

export interface AccessLogOptions {
  stats: Stats
  log: Logger
}

/** How long the drain waits for queued lines before it closes the log and drops the rest. */
const closeWaitMs = 1000

/**
 * path '-' is stdout; null disables the access log. The file is opened here, synchronously, so that a path
 * the sidecar cannot write stops it before any listener binds (AccessLogError). Writes never block
 * proxying: lines that cannot be written are dropped and counted (see AccessLogCounters).
 */
export function createAccessLog(path: string | null, format: AccessLogFormat, options: AccessLogOptions): AccessLogSink {
  if (path === null) return { write() {}, reopen() {}, close: async () => {} }
  const counters = new AccessLogCounters(options.stats)
  const fd = path === '-' ? 1 : openForAppend(path)
  const render = format === 'json' ? formatJson : formatText
  const log = options.log.child({ accessLog: path })
  // One warning per outage, not per line: a full disk would otherwise flood the sidecar's own log.
  let failing = false
  let droppedInOutage = 0
  const dropped = (lines: number, warn: () => void) => {
    counters.logsDropped.inc(lines)
    droppedInOutage += lines
    if (!failing) warn()
    failing = true
  }
  const writer = new LineWriter(fd, {
    events: {
      failed(err, lines) {
        counters.writeFailed.inc()
        counters.totalBuffered.value = writer.buffered
        dropped(lines, () =>
          log.warn(
            { errno: err.code, err: err.message },
            `access log ${path}: write failed (${err.code}): dropping lines until it can be written again`,
          ),
        )
      },
      overflow(lines) {
        dropped(lines, () =>
          log.warn({ bufferedBytes: writer.buffered }, `access log ${path}: write buffer full: dropping lines until it drains`),
        )
      },
      completed(lines) {
        counters.writeCompleted.inc()
        counters.totalBuffered.value = writer.buffered
        counters.logsWritten.inc(lines)
        if (failing) log.info({ dropped: droppedInOutage }, `access log ${path}: writable again after dropping ${droppedInOutage} lines`)
        failing = false
        droppedInOutage = 0
      },
    },
  })
  counters.totalBuffered.used = true
  return {
    write(entry) {
      if (writer.write(render(entry) + '\n')) counters.writeBuffered.inc()
      counters.totalBuffered.value = writer.buffered
    },
    reopen() {
      if (path === '-') return
      try {
        writer.setFd(openForAppend(path))
      } catch (err) {
        counters.reopenFailed.inc()
        const errno = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
        log.error({ errno }, `access log reopen on SIGHUP failed: ${(err as Error).message}; still writing to the file opened before`)
      }
    },
    async close() {
      await writer.flush(closeWaitMs)
      writer.close()
      counters.totalBuffered.value = 0
    },
  }
}

/**
 * Envoy's file access log statistics (rooted at filesystem.), plus the lines themselves under
 * access_logs.file., named like Envoy's gRPC access log's logs_written / logs_dropped: Envoy counts no
 * dropped lines for files. flushed_by_timer is absent: lines are written as they come, not on a timer.
 */
class AccessLogCounters {
  readonly writeBuffered: Counter
  readonly writeCompleted: Counter
  readonly writeFailed: Counter
  readonly reopenFailed: Counter
  readonly totalBuffered: Gauge
  readonly logsWritten: Counter
  readonly logsDropped: Counter
  constructor(stats: Stats) {
    this.writeBuffered = stats.counter('filesystem.write_buffered')
    this.writeCompleted = stats.counter('filesystem.write_completed')
    this.writeFailed = stats.counter('filesystem.write_failed')
    this.reopenFailed = stats.counter('filesystem.reopen_failed')
    this.totalBuffered = stats.gauge('filesystem.write_total_buffered')
    this.logsWritten = stats.counter('access_logs.file.logs_written')
    this.logsDropped = stats.counter('access_logs.file.logs_dropped')
  }
}

/**
 * Opens as the process is now: after the switch to --uid, so a path only root may write (/var/log) fails
 * even when the sidecar was started as root; the message says so. Directories are not created (nor does
 * Envoy create them).
 */
function openForAppend(path: string): number {
  try {
    return openSync(path, 'a', 0o644)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const uid = process.getuid?.()
    const gid = process.getgid?.()
    const why =
      e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
        ? ' (the sidecar opens it after switching to --uid/--gid, also when started as root)'
        : ''
    throw new AccessLogError(
      `--access-log ${path}: cannot open for writing: ${e.code ?? e.message} (${describe(e)}) as uid ${uid} gid ${gid}${why}`,
      err,
    )
  }
}

function describe(e: NodeJS.ErrnoException): string {
  const known: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such directory',
    EISDIR: 'it is a directory',
    EROFS: 'read-only filesystem',
    ENOSPC: 'no space left on device',
    ENOTDIR: 'a component of the path is not a directory',
  }
  return known[e.code ?? ''] ?? e.message
}
