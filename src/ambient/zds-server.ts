// ZDS's node-agent side (istio-cni's cni/pkg/nodeagent/ztunnelserver*.go): a SOCK_SEQPACKET listener ztunnel
// connects to. On each connection: ztunnel's hello, then every pod (an add carrying the pod's netns fd, or a
// keep when the netns cannot be opened), then snapshot_sent; later adds go to the newest connection and dels to
// all, as Istio does. One request at a time per connection, each waiting for its ack (acks are matched by order
// only); no ack within ackTimeoutMs (Istio's 5 s deadline) or any unasked-for message ends the connection.
import { EventEmitter } from 'node:events'
import { closeSync, openSync, rmSync } from 'node:fs'
import { silentLogger, type Logger } from '../logger.js'
import { ZdsNackError, ZdsProtocolError } from '../errors.js'
import { SeqpacketSocket, seqpacketListen, type FdMessage } from '../native/unix-fds.js'
import { encode, parseAck, parseHello, requestType, type WorkloadRequest } from './zds-messages.js'

/** A pod as the node agent holds it: its netns file (/var/run/netns/NAME, /proc/PID/ns/net) is sent as the fd. */
export interface ZdsPod {
  uid: string
  name: string
  namespace: string
  serviceAccount: string
  netnsPath: string
}

export interface ZdsServerOptions {
  /** the socket's path; a file left there (a previous agent's socket) is removed first, as istio-cni does */
  path: string
  logger?: Logger
  /** how long an ack may take (default 5000, istio-cni's readWriteDeadline) */
  ackTimeoutMs?: number
}

/** A request ztunnel's side answered with an error: reported by the 'nack' event (and rejected for addPod/removePod). */
export interface ZdsNack {
  connection: number
  request: string
  uid?: string
  error: string
}

class Connection {
  private queue: Promise<unknown> = Promise.resolve()
  private waiting: { resolve: (m: FdMessage) => void; reject: (e: Error) => void } | undefined
  readonly ended: Promise<string>

  constructor(
    readonly id: number,
    private readonly socket: SeqpacketSocket,
  ) {
    const first = new Promise<FdMessage>((resolve, reject) => (this.waiting = { resolve, reject }))
    first.catch(() => {})
    this.hello = first
    this.ended = this.read()
  }

  readonly hello: Promise<FdMessage>

  /** Runs task after every request queued before it. */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task)
    this.queue = run.catch(() => {})
    return run
  }

  /** Sends one request (with the fd for an add) and resolves with the ack's error ('' for an ack). */
  async request(request: WorkloadRequest, fd: number | undefined, timeoutMs: number): Promise<string> {
    if (this.socket.closed) throw new ZdsProtocolError(`connection ${this.id} is closed`)
    const answer = new Promise<FdMessage>((resolve, reject) => (this.waiting = { resolve, reject }))
    answer.catch(() => {}) // a send that throws leaves it unawaited; the read loop still rejects it at the end
    try {
      this.socket.send(encode(request), fd === undefined ? [] : [fd])
    } catch (err) {
      this.waiting = undefined
      void this.close()
      throw err
    }
    return parseAck(await this.within(answer, timeoutMs, `an ack to ${requestType(request)}`))
  }

  async within(answer: Promise<FdMessage>, timeoutMs: number, what: string): Promise<FdMessage> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ZdsProtocolError(`no ${what} within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      return await Promise.race([answer, timeout])
    } catch (err) {
      void this.close()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  close(): Promise<void> {
    return this.socket.close()
  }

  // ztunnel speaks only when spoken to, so a message nobody waits for breaks the protocol. Resolves with why
  // the connection ended.
  private async read(): Promise<string> {
    let reason: string
    try {
      for (;;) {
        const m = await this.socket.recv()
        if (m === null) {
          reason = 'ztunnel closed the connection'
          break
        }
        for (const fd of m.fds) closeSync(fd)
        const waiting = this.waiting
        this.waiting = undefined
        if (!waiting) {
          reason = `unexpected message from ztunnel: ${m.data.toString('utf8').slice(0, 200)}`
          break
        }
        waiting.resolve(m)
      }
    } catch (err) {
      reason = (err as NodeJS.ErrnoException).code === 'ECANCELED' ? 'closed' : (err as Error).message
    }
    this.waiting?.reject(new ZdsProtocolError(`connection ${this.id} ended before the answer: ${reason}`))
    this.waiting = undefined
    await this.close()
    return reason
  }
}

export class ZdsServer extends EventEmitter {
  private readonly pods = new Map<string, ZdsPod>()
  private readonly connections: Connection[] = []
  private listener: SeqpacketSocket | undefined
  private accepting: Promise<void> | undefined
  private nextId = 1
  private readonly log: Logger
  private readonly ackTimeoutMs: number

  constructor(private readonly options: ZdsServerOptions) {
    super()
    this.log = options.logger ?? silentLogger
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000
  }

  /** Listens on the socket path; events: 'connection' (id), 'snapshot' (id, after its ack), 'nack' (ZdsNack), 'disconnect' (id, reason). */
  listen(): void {
    rmSync(this.options.path, { force: true })
    this.listener = new SeqpacketSocket(seqpacketListen(this.options.path, 16))
    this.accepting = this.acceptLoop(this.listener)
  }

  /** How many ztunnels are connected. */
  get connectionCount(): number {
    return this.connections.length
  }

  /** The pods held, in the order they were added. */
  podList(): ZdsPod[] {
    return [...this.pods.values()]
  }

  /**
   * Holds the pod and sends it to the newest connection: resolves true once acked, false with no connection (the
   * pod goes in the next snapshot); rejects ZdsNackError for a nack, ZdsProtocolError when the connection fails.
   */
  async addPod(pod: ZdsPod): Promise<boolean> {
    this.pods.set(pod.uid, { ...pod })
    const conn = this.connections.at(-1)
    if (!conn) return false
    const error = await conn.serial(() => this.sendPod(conn, pod))
    if (error) throw new ZdsNackError(`add ${pod.uid}`, error)
    return true
  }

  /** Forgets the pod and sends del to every connection; resolves with how many acked, rejects for a nack. */
  async removePod(uid: string): Promise<number> {
    this.pods.delete(uid)
    const results = await Promise.allSettled(
      this.connections.map((conn) => conn.serial(() => this.send(conn, { del: { uid } }, undefined, uid))),
    )
    for (const r of results) {
      if (r.status === 'rejected') throw r.reason
      if (r.value) throw new ZdsNackError(`del ${uid}`, r.value)
    }
    return results.length
  }

  /** Stops listening, closes every connection and removes the socket file. */
  async close(): Promise<void> {
    await this.listener?.close()
    await this.accepting
    await Promise.all(this.connections.map((c) => c.close().then(() => c.ended)))
    rmSync(this.options.path, { force: true })
  }

  private async acceptLoop(listener: SeqpacketSocket): Promise<void> {
    for (;;) {
      let fd: number
      try {
        fd = await listener.accept()
      } catch (err) {
        if (listener.closed) return
        // EMFILE and the like: the connection waits in the backlog; try again shortly rather than spin.
        this.log.error({ err }, 'zds: accept failed')
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      void this.serve(new Connection(this.nextId++, new SeqpacketSocket(fd)))
    }
  }

  private async serve(conn: Connection): Promise<void> {
    this.connections.push(conn)
    this.emit('connection', conn.id)
    void conn.ended.then((reason) => {
      this.connections.splice(this.connections.indexOf(conn), 1)
      this.log.info({ connection: conn.id, reason }, 'zds: ztunnel disconnected')
      this.emit('disconnect', conn.id, reason)
    })
    try {
      parseHello(await conn.within(conn.hello, this.ackTimeoutMs, 'hello'))
      this.log.info({ connection: conn.id, pods: this.pods.size }, 'zds: ztunnel said hello, sending the snapshot')
      await conn.serial(async () => {
        for (const pod of [...this.pods.values()]) await this.sendPod(conn, pod)
        await this.send(conn, { snapshot_sent: {} }, undefined)
      })
      this.emit('snapshot', conn.id)
    } catch (err) {
      this.log.warn({ connection: conn.id, err }, 'zds: connection failed before its snapshot was acked')
      await conn.close()
    }
  }

  // An add with the netns fd; a keep when the netns file cannot be opened (istio-cni sends keep for a pod whose
  // netns it no longer holds, so ztunnel does not drop it). Our copy of the fd is closed once sent.
  private async sendPod(conn: Connection, pod: ZdsPod): Promise<string> {
    let fd: number
    try {
      fd = openSync(pod.netnsPath, 'r')
    } catch (err) {
      this.log.warn({ uid: pod.uid, err }, 'zds: netns cannot be opened, sending keep')
      return this.send(conn, { keep: { uid: pod.uid } }, undefined, pod.uid)
    }
    const workload_info = { name: pod.name, namespace: pod.namespace, service_account: pod.serviceAccount }
    try {
      return await this.send(conn, { add: { uid: pod.uid, workload_info } }, fd, pod.uid)
    } finally {
      closeSync(fd)
    }
  }

  private async send(conn: Connection, request: WorkloadRequest, fd: number | undefined, uid?: string): Promise<string> {
    const error = await conn.request(request, fd, this.ackTimeoutMs)
    if (error) {
      const nack: ZdsNack = { connection: conn.id, request: requestType(request), error, ...(uid ? { uid } : {}) }
      this.log.error(nack, 'zds: ztunnel answered with an error')
      this.emit('nack', nack)
    }
    return error
  }
}
