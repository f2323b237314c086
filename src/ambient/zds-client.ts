// ZDS's ztunnel side (ztunnel's src/inpod/workloadmanager.rs, protocol.rs, statemanager.rs): connects to the
// node agent's socket, says hello, then answers every request with an ack, or a nack carrying the error. An add
// must carry exactly one fd (the pod's netns); any other fd is closed and the request nacked; bad JSON, an
// unknown type or a del of a uid it does not hold is nacked too, never thrown. On snapshot_sent the workloads
// the snapshot did not name are deleted (ztunnel's reconcile). When the agent goes away it reconnects with
// exponential backoff (ztunnel: 10 ms doubling to 15 s; here maxDelayMs), keeping its workloads meanwhile.
import { EventEmitter } from 'node:events'
import { closeSync } from 'node:fs'
import { silentLogger, type Logger } from '../logger.js'
import { SeqpacketSocket, seqpacketConnect, type FdMessage } from '../native/unix-fds.js'
import { encode, HELLO, parseRequest, requestType } from './zds-messages.js'

export interface ZdsWorkload {
  uid: string
  workload: { name: string; namespace: string; serviceAccount: string }
  /** the pod's netns: the handler's to close once add returned; closed by the client when add throws */
  netnsFd: number
}

/** What the client does with requests; a throw or rejection becomes the nack's error. */
export interface ZdsHandler {
  add(workload: ZdsWorkload): void | Promise<void>
  del(uid: string): void | Promise<void>
  keep?(uid: string): void | Promise<void>
  snapshotSent?(uids: string[]): void | Promise<void>
}

export interface ZdsClientOptions {
  path: string
  handler: ZdsHandler
  logger?: Logger
  /** first retry delay (default 10 ms), doubled per failed attempt up to maxDelayMs (default 5000) */
  initialDelayMs?: number
  maxDelayMs?: number
  /** failed connects in a row before giving up (the 'gaveUp' event); default: never give up, as ztunnel */
  maxAttempts?: number
}

interface SessionState {
  snapshotDone: boolean
  /** the uids this connection's snapshot named (adds and keeps before snapshot_sent) */
  named: Set<string>
  /** set by a snapshot_sent handled without error: the 'snapshot' event's uids, emitted after the ack */
  acked?: string[] | undefined
}

export class ZdsClient extends EventEmitter {
  private readonly known = new Set<string>()
  private socket: SeqpacketSocket | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private wake: (() => void) | undefined
  private readonly log: Logger

  constructor(private readonly options: ZdsClientOptions) {
    super()
    this.log = options.logger ?? silentLogger
  }

  /** Starts connecting; events: 'connected', 'snapshot' (uids), 'nack' ({ request, error }), 'disconnected' (reason), 'gaveUp' (error). */
  start(): void {
    this.running ??= this.run()
  }

  /** The uids of the workloads it holds. */
  workloads(): string[] {
    return [...this.known]
  }

  async close(): Promise<void> {
    this.stopped = true
    this.wake?.()
    await this.socket?.close()
    await this.running
  }

  private async run(): Promise<void> {
    const initial = this.options.initialDelayMs ?? 10
    const max = this.options.maxDelayMs ?? 5000
    let delay = initial
    let failures = 0
    while (!this.stopped) {
      let fd: number
      try {
        fd = seqpacketConnect(this.options.path)
      } catch (err) {
        failures++
        if (failures >= (this.options.maxAttempts ?? Infinity)) {
          this.log.error({ err, failures }, 'zds: cannot reach the node agent, giving up')
          this.emit('gaveUp', err)
          return
        }
        this.log.warn({ path: this.options.path, err: (err as Error).message, retryInMs: delay }, 'zds: cannot reach the node agent')
        await this.sleep(delay)
        delay = Math.min(delay * 2, max)
        continue
      }
      this.socket = new SeqpacketSocket(fd)
      if (this.stopped) break
      const reason = await this.session(this.socket)
      await this.socket.close()
      if (this.stopped) break
      // A node agent that answered with requests was healthy: start the backoff over. One that hangs up at once
      // (an incompatible or dying agent) keeps backing off, as ztunnel does after a failed hello.
      if (reason.served) {
        failures = 0
        delay = initial
      }
      this.emit('disconnected', reason.why)
      this.log.warn({ reason: reason.why, retryInMs: delay }, 'zds: disconnected from the node agent')
      await this.sleep(delay)
      delay = Math.min(delay * 2, max)
    }
    await this.socket?.close() // a socket made as close() was called
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  private async session(socket: SeqpacketSocket): Promise<{ served: boolean; why: string }> {
    const state: SessionState = { snapshotDone: false, named: new Set<string>() }
    let served = false
    try {
      socket.send(encode(HELLO))
      this.emit('connected')
      for (;;) {
        const message = await socket.recv()
        if (message === null) return { served, why: 'the node agent closed the connection' }
        served = true
        const error = await this.handle(message, state)
        socket.send(encode({ ack: { error } }))
        if (error) {
          this.log.warn({ error }, 'zds: nacked a request')
          this.emit('nack', { error })
        }
        // Once acked, so that a listener sees the agent's side done with the snapshot too.
        if (state.acked) this.emit('snapshot', state.acked)
        state.acked = undefined
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      return { served, why: code === 'ECANCELED' ? 'closed' : (err as Error).message }
    }
  }

  // The ack's error for one request: '' when it was done.
  private async handle(message: FdMessage, state: SessionState): Promise<string> {
    const fds = message.fds
    let request
    try {
      request = parseRequest(message.data)
    } catch (err) {
      fds.forEach((fd) => closeSync(fd))
      return (err as Error).message
    }
    const type = requestType(request)
    if ('add' in request) {
      const { uid, workload_info: w } = request.add
      if (fds.length !== 1) {
        fds.forEach((fd) => closeSync(fd))
        return `add of ${uid} carries ${fds.length} fds, wants exactly 1 (the pod's netns)`
      }
      const netnsFd = fds[0] as number
      const workload = { name: w.name, namespace: w.namespace, serviceAccount: w.service_account }
      const failed = await this.call(() => this.options.handler.add({ uid, workload, netnsFd }), `add of ${uid}`)
      if (failed) {
        closeSync(netnsFd)
        return failed
      }
      this.known.add(uid)
      if (!state.snapshotDone) state.named.add(uid)
      return ''
    }
    if (fds.length > 0) {
      fds.forEach((fd) => closeSync(fd))
      return `${type} carries ${fds.length} fds, wants none`
    }
    if ('del' in request) {
      const { uid } = request.del
      if (!this.known.has(uid)) return `del of unknown uid ${uid}`
      state.named.delete(uid)
      const failed = await this.call(() => this.options.handler.del(uid), `del of ${uid}`)
      if (!failed) this.known.delete(uid)
      return failed
    }
    if (state.snapshotDone) return `${type} after snapshot_sent`
    if ('keep' in request) {
      state.named.add(request.keep.uid)
      return this.call(() => this.options.handler.keep?.(request.keep.uid), `keep of ${request.keep.uid}`)
    }
    state.snapshotDone = true
    for (const uid of [...this.known].filter((uid) => !state.named.has(uid))) {
      const failed = await this.call(() => this.options.handler.del(uid), `del of ${uid} (not in the snapshot)`)
      if (failed) return failed
      this.known.delete(uid)
    }
    const uids = this.workloads()
    const failed = await this.call(() => this.options.handler.snapshotSent?.(uids), 'snapshot_sent')
    if (!failed) state.acked = uids
    return failed
  }

  private async call(fn: () => void | Promise<void>, what: string): Promise<string> {
    try {
      await fn()
      return ''
    } catch (err) {
      return `${what}: ${(err as Error).message}`
    }
  }
}
