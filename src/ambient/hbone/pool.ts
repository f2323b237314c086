// HBONE sessions shared by tunnels, as ztunnel's pool (src/proxy/pool.rs, src/proxy/h2/client.rs): one TLS +
// HTTP/2 session per key (source identity, destination identity, destination address, and the spoofed
// source address), used for up to maxStreams tunnels at once (ztunnel's POOL_MAX_STREAMS_PER_CONNECTION, 100,
// or fewer if the server's SETTINGS_MAX_CONCURRENT_STREAMS says so); one more tunnel opens another session.
// A session with no tunnel for idleMs is closed (ztunnel drops it from the pool after
// POOL_UNUSED_RELEASE_TIMEOUT, 5 minutes). A session that failed, closed or got GOAWAY takes no more tunnels.
import type { ClientHttp2Session } from 'node:http2'

export interface PoolKey {
  source: string
  destination: string
  /** the peer's 15008 as `ip:port` */
  via: string
  /** the address the tunnel is opened from, when spoofed ('' otherwise) */
  sourceAddress: string
}

/** A session as sessions() shows it (lab status, the ztunnel's /config_dump). */
export interface PooledSession extends PoolKey {
  /** tunnels on it now */
  tunnels: number
  /** false while its TLS handshake is under way */
  open: boolean
}

interface Pooled {
  key: PoolKey
  ready: Promise<ClientHttp2Session>
  session: ClientHttp2Session | null
  /** tunnels on it, counted when handed out, before the session is even up */
  active: number
  usable: boolean
  idle: NodeJS.Timeout | null
}

/** A checked-out slot: release() once, when its tunnel is closed (or failed to open). */
export interface Lease {
  session: Promise<ClientHttp2Session>
  /** true when this lease opened a new session */
  fresh: boolean
  release(): void
}

export class SessionPool {
  readonly #byKey = new Map<string, Pooled[]>()
  readonly #open: (key: PoolKey) => Promise<ClientHttp2Session>
  readonly #maxStreams: number
  readonly #idleMs: number

  constructor(open: (key: PoolKey) => Promise<ClientHttp2Session>, maxStreams: number, idleMs: number) {
    this.#open = open
    this.#maxStreams = maxStreams
    this.#idleMs = idleMs
  }

  /** Sessions in the pool now (opening or open). */
  get size(): number {
    let n = 0
    for (const list of this.#byKey.values()) n += list.length
    return n
  }

  /** Each pooled session: its key, the tunnels on it now and whether its handshake is done. */
  sessions(): PooledSession[] {
    const out: PooledSession[] = []
    for (const list of this.#byKey.values())
      for (const p of list) if (p.usable) out.push({ ...p.key, tunnels: p.active, open: p.session !== null })
    return out
  }

  checkout(key: PoolKey): Lease {
    const k = JSON.stringify([key.source, key.destination, key.via, key.sourceAddress])
    const list = this.#byKey.get(k) ?? []
    this.#byKey.set(k, list)
    let p = list.find((s) => s.usable && s.active < this.#capacity(s))
    const fresh = !p
    if (!p) p = this.#add(k, list, key)
    const pooled = p
    pooled.active++
    if (pooled.idle) clearTimeout(pooled.idle)
    pooled.idle = null
    let released = false
    return {
      session: pooled.ready,
      fresh,
      release: () => {
        if (released) return
        released = true
        pooled.active--
        if (pooled.active === 0 && pooled.usable) {
          pooled.idle = setTimeout(() => this.#drop(k, pooled, true), this.#idleMs)
          pooled.idle.unref()
        }
      },
    }
  }

  /** Closes every session (their tunnels are reset). */
  close(): void {
    for (const [k, list] of this.#byKey) for (const p of [...list]) this.#drop(k, p, false)
  }

  #capacity(p: Pooled): number {
    const theirs = p.session?.remoteSettings.maxConcurrentStreams
    return theirs === undefined ? this.#maxStreams : Math.min(this.#maxStreams, theirs)
  }

  #add(k: string, list: Pooled[], key: PoolKey): Pooled {
    const p: Pooled = { key, ready: this.#open(key), session: null, active: 0, usable: true, idle: null }
    list.push(p)
    p.ready.then(
      (session) => {
        p.session = session
        const gone = (): void => this.#forget(k, p)
        session.once('close', gone)
        session.once('goaway', gone)
        session.once('error', gone)
        if (session.closed || session.destroyed) gone()
      },
      () => this.#forget(k, p),
    )
    return p
  }

  /** Takes a session out of the pool; its open tunnels carry on. */
  #forget(k: string, p: Pooled): void {
    p.usable = false
    if (p.idle) clearTimeout(p.idle)
    const list = this.#byKey.get(k)
    if (!list) return
    const i = list.indexOf(p)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.#byKey.delete(k)
  }

  #drop(k: string, p: Pooled, graceful: boolean): void {
    this.#forget(k, p)
    p.ready.then(
      (s) => (graceful ? s.close() : s.destroy()),
      () => {},
    )
  }
}
