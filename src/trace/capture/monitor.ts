// `nft monitor` in a pod's namespace while the request runs. It listens to ruleset events as well as
// traces, so the trace table's own "add table" event proves it is subscribed before any packet is sent.
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { CommandFailedError, MissingBinaryError } from '../../errors.js'
import { inNetns } from '../../sys/netns.js'
import { traceTable } from './nft-table.js'

export class TraceMonitor {
  readonly ns: string
  #child: ChildProcess
  #text = ''
  #stderr = ''
  #exited: Promise<void>
  #failure: Error | undefined

  constructor(ns: string) {
    this.ns = ns
    // -a: rule handles, which name the iptables rule a trace line came from
    const [program, ...args] = inNetns(ns, ['nft', '-a', 'monitor'])
    this.#child = spawn(program!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.#text += d))
    this.#child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr += d))
    this.#exited = new Promise((resolve) => {
      this.#child.once('error', (err: NodeJS.ErrnoException) => {
        this.#failure = err.code === 'ENOENT' ? new MissingBinaryError(program!, 'install iproute2') : err
        resolve()
      })
      this.#child.once('close', () => resolve())
    })
  }

  get text(): string {
    return this.#text
  }

  /** Resolves once the monitor printed the trace table's creation (install it after starting this). */
  async ready(timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs
    const marker = `add table inet ${traceTable}`
    while (!this.#text.includes(marker)) {
      if (this.#failure) throw this.#failure
      if (this.#child.exitCode !== null) throw new CommandFailedError(`nft monitor in ${this.ns} exited: ${this.#stderr.trim()}`)
      if (Date.now() > end) throw new CommandFailedError(`nft monitor in ${this.ns} did not report the trace table within ${timeoutMs} ms`)
      await sleep(20)
    }
  }

  /** Waits until the output has been quiet for a while: trace lines arrive a moment after their packet. */
  async settle(quietMs = 300, maxMs = 2000): Promise<void> {
    const end = Date.now() + maxMs
    let length = -1
    while (this.#text.length !== length && Date.now() < end && this.#child.exitCode === null) {
      length = this.#text.length
      await sleep(quietMs)
    }
  }

  async stop(): Promise<string> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM')
    await Promise.race([this.#exited, sleep(2000)])
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL')
    await this.#exited
    return this.#text
  }
}

/**
 * Installs the trace table and waits until every monitor saw it. `nft monitor` subscribes a moment after it
 * starts; on a busy machine the table can be added before that and its event missed, so the table is added
 * again (install removes a leftover first: a new event) for a monitor still waiting, a few times.
 */
export async function armMonitors(monitors: TraceMonitor[], install: (ns: string) => Promise<void>, attempts = 5): Promise<void> {
  for (const m of monitors) await install(m.ns)
  for (const m of monitors) {
    for (let attempt = 1; ; attempt++) {
      try {
        await m.ready(1500)
        break
      } catch (err) {
        if (attempt === attempts) throw err
        await install(m.ns)
      }
    }
  }
}
