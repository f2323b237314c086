// The sidecar's file descriptors as a budget shared by both listeners, so running out of them is seen,
// counted and logged once instead of showing up only as `delayed_connect_error:_24` per access-log line.
//
// Every proxied connection holds two descriptors (downstream and upstream socket), a refused one holds one
// until it is closed. Out of descriptors, two things go wrong: the upstream socket() fails with EMFILE
// (the connection is logged UF with reason 24), and accept() fails, which libuv handles on its own (its
// "EMFILE trick": it frees a reserved descriptor, accepts and closes every pending connection, reopens the
// reserve) without telling node, so those connections vanish with no log line and no counter. Keeping
// headroom turns both into one visible event: once the budget (soft RLIMIT_NOFILE, minus what the process
// held when the listeners were bound, minus a reserve for the admin ports and the accept of a connection over
// budget) is used up, further connections are accepted and closed at once and counted as Envoy counts
// connections over its global connection limit (listener.*.downstream_global_cx_overflow). The native relay
// also holds pipes (two descriptors each) while bytes are in flight: their most is set aside too.
import { readdirSync, readFileSync } from 'node:fs'
import type { Logger } from '../logger.js'

/** Descriptors kept free beyond the budget: admin connections, log reopen, the accept of a refused connection. */
export function reserveFor(limit: number): number {
  return Math.max(16, Math.ceil(limit * 0.02))
}

/**
 * Most pipes the native relay may hold at once (relay-pump.c's max_pipes): a sixteenth of the limit, at most
 * 4096. More directions with bytes in flight use read/write, so this bounds descriptors, not connections.
 */
export function relayPipesFor(limit: number): number {
  return Number.isFinite(limit) ? Math.min(4096, Math.floor(limit / 16)) : 4096
}

/** RLIMIT_NOFILE from /proc/self/limits ('Max open files  1024  4096  files'); undefined when unreadable. */
export function fileLimits(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    if (!m) return undefined
    const n = (v: string) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v))
    return { soft: n(m[1]!), hard: n(m[2]!) }
  } catch {
    return undefined
  }
}

function openDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1 // minus the one readdir itself opened
  } catch {
    return undefined
  }
}

/** A burst ends after this long without a descriptor shortage; the next shortage logs a warning again. */
const burstQuietMs = 1000

export class FdBudget {
  readonly #log: Logger
  readonly #relayPipes: boolean
  #limits: { soft: number; hard: number } | undefined
  #baseline = 0
  #pipeFds = 0
  #max = Number.POSITIVE_INFINITY
  #held = 0
  #reserved = 0
  #burst: { start: number; overflow: number; exhausted: number; timer: NodeJS.Timeout } | undefined
  /**
   * [0]: the descriptors the listeners may still take, kept current for the native acceptor (native/acceptor.c),
   * which reads it before each round of accepts: every fd of a round is open at once until the round is refused
   * or taken, so a round is bounded by what is left.
   */
  readonly available = new Int32Array(1)

  /** relayPipes: the native relay runs in this process; its pipes' descriptors are set aside (relayPipesFor). */
  constructor(log: Logger, { relayPipes = false }: { relayPipes?: boolean } = {}) {
    this.#log = log
    this.#relayPipes = relayPipes
    this.#changed()
  }

  /** Reads the limit and the descriptors in use; called once the listeners are bound. */
  measure(): void {
    this.#limits = fileLimits()
    const open = openDescriptors()
    if (!this.#limits || open === undefined || !Number.isFinite(this.#limits.soft)) return
    this.#baseline = open - this.#held
    this.#pipeFds = this.#relayPipes ? 2 * relayPipesFor(this.#limits.soft) : 0
    this.#max = this.#limits.soft - this.#baseline - reserveFor(this.#limits.soft) - this.#pipeFds - this.#reserved
    this.#changed()
  }

  #changed(): void {
    this.available[0] = Math.max(0, Math.min(0x7fffffff, this.#max - this.#held))
  }

  /**
   * Sets aside up to n descriptors for a part of the sidecar that opens sockets of its own (the DNS
   * forwarder, one per query in flight), so that it and the listeners cannot starve each other. Grants at most
   * a quarter of what the limit leaves for sockets (n in full when the limit is unknown); the listeners' share
   * shrinks by what it grants, which it returns. Call it after measure(), before the reservation is in use.
   */
  reserve(n: number): number {
    const granted = Number.isFinite(this.#max) ? Math.max(0, Math.min(n, Math.floor((this.#max + this.#reserved) / 4) - this.#reserved)) : n
    this.#reserved += granted
    this.#max -= granted
    this.#changed()
    return granted
  }

  /** Most sockets the listeners may hold at once. */
  get max(): number {
    return this.#max
  }

  get held(): number {
    return this.#held
  }

  /** Takes n descriptors if the budget has them. */
  take(n: number): boolean {
    if (this.#held + n > this.#max) return false
    this.#held += n
    this.#changed()
    return true
  }

  /** Takes n descriptors whatever the budget says (a socket already accepted, to be closed). */
  hold(n: number): void {
    this.#held += n
    this.#changed()
  }

  release(n: number): void {
    this.#held -= n
    this.#changed()
  }

  /** A connection refused because the budget is used up; counted by the caller, warned once per burst. */
  overflow(listener: string): void {
    this.#event(listener, 'overflow')
  }

  /** A socket the kernel refused with EMFILE or ENFILE (the budget did not see it coming: other users). */
  exhausted(listener: string, err: { code?: string | undefined }): void {
    this.#event(listener, 'exhausted', err.code)
  }

  #event(listener: string, kind: 'overflow' | 'exhausted', code?: string): void {
    if (this.#burst) {
      this.#burst[kind]++
      this.#burst.timer.refresh()
      return
    }
    const timer = setTimeout(() => this.#endBurst(), burstQuietMs).unref()
    this.#burst = { start: Date.now(), overflow: 0, exhausted: 0, timer }
    this.#burst[kind]++
    const soft = this.#limits?.soft
    const hard = this.#limits?.hard
    const why =
      code === 'ENFILE'
        ? 'ENFILE: the system-wide file table is full (fs.file-max)'
        : `EMFILE: this process's limit is ${soft ?? 'unknown'} (RLIMIT_NOFILE soft ${soft ?? '?'}, hard ${hard ?? '?'})`
    const what =
      kind === 'overflow'
        ? `all ${this.#max} sockets the limit leaves for connections are in use (${this.#held}, ${this.#baseline} ` +
          `held by the process at start, ${soft === undefined ? 0 : reserveFor(soft)} in reserve` +
          `${this.#pipeFds ? `, ${this.#pipeFds} for the relay's pipes` : ''}); new connections ` +
          `are closed at once and counted in listener.*.downstream_global_cx_overflow`
        : `a socket could not be created (${code}); its connection fails and is counted in sidecar.fd_exhausted`
    this.#log.warn(
      { listener, code: code ?? 'EMFILE', soft, hard, held: this.#held, max: this.#max },
      `out of file descriptors (${why}): ${what}. Raise the limit (ulimit -n, LimitNOFILE=) or lower the load; ` + `one warning per burst`,
    )
  }

  #endBurst(): void {
    const b = this.#burst
    if (!b) return
    this.#burst = undefined
    this.#log.info(
      { overflow: b.overflow, exhausted: b.exhausted, ms: Date.now() - b.start - burstQuietMs, held: this.#held },
      'file descriptors available again',
    )
  }
}

/** The errors that mean the process or the system is out of file descriptors. */
export function isFdExhaustion(err: { code?: string | undefined }): boolean {
  return err.code === 'EMFILE' || err.code === 'ENFILE'
}
