// One log line per burst of the same event instead of one per event: anyone who can reach a listener can
// send a thousand connections, and a thousand identical lines would bury everything else in the log.
// The first event of a burst is logged at once; the rest are counted and summed up in one line when the burst
// ends (a quiet period), or every interval while it goes on.

/** A burst ends after this long without an event; the next event is logged in full again. */
export const BURST_QUIET_MS = 1000
/** While a burst goes on, its count so far is logged this often. */
export const BURST_INTERVAL_MS = 10_000

export interface BurstSummary {
  /** events since the last line */
  count: number
  /** their sources, each once, in order of arrival (at most MAX_SOURCES) */
  sources: string[]
  /** milliseconds since the last line */
  ms: number
}

const MAX_SOURCES = 5

interface Burst {
  since: number
  count: number
  sources: Set<string>
  timer: NodeJS.Timeout
}

export class BurstLog<T> {
  readonly #first: (event: T) => void
  readonly #summary: (s: BurstSummary) => void
  readonly #quietMs: number
  #burst: Burst | undefined

  /** first logs an event in full; summary logs what followed it. */
  constructor(first: (event: T) => void, summary: (s: BurstSummary) => void, options: { quietMs?: number } = {}) {
    this.#first = first
    this.#summary = summary
    this.#quietMs = options.quietMs ?? BURST_QUIET_MS
  }

  record(event: T, source: string): void {
    const b = this.#burst
    if (!b) {
      const timer = setTimeout(() => this.#end(), this.#quietMs).unref()
      this.#burst = { since: Date.now(), count: 0, sources: new Set(), timer }
      return this.#first(event)
    }
    b.count++
    if (b.sources.size < MAX_SOURCES) b.sources.add(source)
    b.timer.refresh()
    if (Date.now() - b.since >= BURST_INTERVAL_MS) this.#flush(b)
  }

  /** Logs what is pending now (the sidecar's stop), so no count is lost. */
  flush(): void {
    const b = this.#burst
    if (!b) return
    clearTimeout(b.timer)
    this.#burst = undefined
    this.#flush(b)
  }

  #end(): void {
    const b = this.#burst
    this.#burst = undefined
    if (b) this.#flush(b)
  }

  #flush(b: Burst): void {
    if (b.count > 0) this.#summary({ count: b.count, sources: [...b.sources], ms: Date.now() - b.since })
    b.count = 0
    b.sources.clear()
    b.since = Date.now()
  }
}
