// The one JSON line each pod program prints last, as the bench reads it back (harness.runJson).
import type { CannonResult } from '../../src/lab/cannon.js'
import type { Percentiles } from '../../src/lab/percentiles.js'

/** bench/apps/bulk-client.mjs */
export interface BulkResult {
  bytes: number
  ms: number
  streams: number
  error: string | null
}

/** bench/apps/connect-client.mjs */
export interface ConnectResult {
  connections: number
  ms: number
  errors: number
  latenciesMs: Percentiles
}

/** dist/lab/cannon.js: autocannon's engine; error when it could not run */
export type CannonRun = CannonResult & { error?: string }
