// Drives the two diff-peer.mjs apps (client pod, server pod) over a Unix socket and runs each connection's plan
// in lock step: a step is over only when the other end observed it, so the bytes and the closes each end sees
// depend on the relay's semantics, never on timing.
import { createServer, type Server, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { dataSeed, type Plan, type Side } from './diff-plan.js'

export interface EndState {
  rx: number
  events: string[]
  closed: boolean
  timeout?: boolean
  sha256?: string
  error?: string
}

export interface ConnOutcome {
  id: number
  client: EndState
  server: EndState
  /** steps whose effect the other end never saw within the wait (a stream cut short or stuck) */
  stalls: string[]
}

type Reply = EndState & { seq?: number; ev?: string; id?: number; port?: number }

export class Control {
  readonly #server: Server
  readonly #peers = new Map<Side, Socket>()
  readonly #pending = new Map<number, (r: Reply) => void>()
  readonly #accepted = new Map<number, () => void>()
  readonly #acceptedEarly = new Set<number>()
  readonly #hello: Record<Side, Promise<void>>
  #seq = 0

  constructor(path: string) {
    const hellos = {} as Record<Side, () => void>
    this.#hello = {
      client: new Promise<void>((r) => (hellos.client = r)),
      server: new Promise<void>((r) => (hellos.server = r)),
    }
    this.#server = createServer((socket) => {
      createInterface({ input: socket }).on('line', (line) => {
        const msg = JSON.parse(line) as Reply
        if (msg.ev === 'ready' || msg.ev === 'listening') {
          const side: Side = msg.ev === 'ready' ? 'client' : 'server'
          this.#peers.set(side, socket)
          hellos[side]()
        } else if (msg.ev === 'accepted') {
          const waiter = this.#accepted.get(msg.id!)
          if (waiter) waiter()
          else this.#acceptedEarly.add(msg.id!)
        } else if (msg.seq !== undefined) this.#pending.get(msg.seq)?.(msg)
      })
    })
    this.#server.listen(path)
  }

  /** Resolves once the app connected (the server app is then listening). */
  async ready(side: Side, timeoutMs = 15_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the diff peer (${side}) did not connect within ${timeoutMs} ms`)), timeoutMs)
    })
    await Promise.race([this.#hello[side], timeout]).finally(() => clearTimeout(timer))
  }

  call(side: Side, cmd: Record<string, unknown>): Promise<Reply> {
    const seq = this.#seq++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${side} did not answer ${JSON.stringify(cmd)}`)), 60_000)
      this.#pending.set(seq, (r) => {
        clearTimeout(timer)
        this.#pending.delete(seq)
        if (r.error) reject(new Error(`${side}: ${r.error}`))
        else resolve(r)
      })
      this.#peers.get(side)!.write(JSON.stringify({ ...cmd, seq }) + '\n')
    })
  }

  accepted(id: number, timeoutMs = 10_000): Promise<boolean> {
    if (this.#acceptedEarly.delete(id)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#accepted.delete(id)
        resolve(false)
      }, timeoutMs)
      this.#accepted.set(id, () => {
        clearTimeout(timer)
        this.#accepted.delete(id)
        resolve(true)
      })
    })
  }

  close(): void {
    for (const s of this.#peers.values()) s.destroy()
    this.#server.close()
  }

  /** One connection's plan, step by step; what each end received and saw at the end. */
  async run(plan: Plan, host: string, port: number, idleTimeoutMs: number, localPort?: number): Promise<ConnOutcome> {
    const { id } = plan
    const opened = await this.call('client', { op: 'open', id, host, port, localPort })
    if (opened.closed || !(await this.accepted(id))) {
      return {
        id,
        client: { ...opened, sha256: '-' },
        server: { rx: 0, events: ['never accepted'], closed: true, sha256: '-' },
        stalls: [],
      }
    }
    const stalls: string[] = []
    const expect = async (side: Side, cmd: Record<string, unknown>, what: string) => {
      if ((await this.call(side, cmd)).timeout) stalls.push(`${side} ${what}`)
    }
    const rx = { client: 0, server: 0 }
    const wait = { timeoutMs: 20_000 }
    for (const [i, step] of plan.steps.entries()) {
      if (step.kind === 'send') {
        const moves: Promise<unknown>[] = []
        for (const from of ['client', 'server'] as const) {
          const to: Side = from === 'client' ? 'server' : 'client'
          if (step[from] === 0) continue
          rx[to] += step[from]
          moves.push(this.call(from, { op: 'send', id, bytes: step[from], dataSeed: dataSeed(id, i, from) }))
          moves.push(expect(to, { op: 'await', id, rx: rx[to], ...wait }, `waited for ${rx[to]} bytes`))
        }
        await Promise.all(moves)
      } else if (step.kind === 'pause') await sleep(step.ms)
      else if (step.kind === 'fin' || step.kind === 'reset') {
        const to: Side = step.side === 'client' ? 'server' : 'client'
        await this.call(step.side, { op: step.kind, id })
        if (step.kind === 'fin') await expect(to, { op: 'await', id, end: true, ...wait }, 'waited for a FIN')
        else await expect(to, { op: 'await', id, closed: true, ...wait }, 'waited for the close after a reset')
      } else {
        // idle: the sidecar closes both ends; each end then resets, so no FIN of theirs races the closed relay
        const idle = { timeoutMs: idleTimeoutMs + 10_000 }
        await Promise.all(
          (['client', 'server'] as const).map((side) => expect(side, { op: 'await', id, end: true, ...idle }, 'waited for the idle close')),
        )
        for (const side of ['client', 'server'] as const) await this.call(side, { op: 'reset', id })
      }
    }
    await Promise.all(
      (['client', 'server'] as const).map((side) => expect(side, { op: 'await', id, closed: true, ...wait }, 'waited for the close')),
    )
    const [client, server] = await Promise.all((['client', 'server'] as const).map((side) => this.call(side, { op: 'report', id })))
    const keep = ({ rx, events, closed, sha256 }: Reply): EndState => ({ rx, events, closed, ...(sha256 ? { sha256 } : {}) })
    return { id, client: keep(client!), server: keep(server!), stalls }
  }
}
