// @ts-check
// The bench's lab: the walkthrough's pods (productpage = client side, reviews = server side) under a lab name
// of the bench's own, a bench server in reviews, and the switches the scenarios need: which sidecar runs in
// the pods and in which pods the capture rules are on. Every process lives in the lab's namespaces, so
// `down` (namespace deletion kills what is inside) leaves nothing behind, also after a failure or SIGINT.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { exec, lifecycle, logger, netns, processes, state as labState } from './lab.mjs'

export const root = fileURLToPath(new URL('..', import.meta.url))
export const ports = { http: 9090, sink: 9091, idle: 9092 }
export const serverIp = '198.18.0.20'
const appUser = { uid: 1000, gid: 1000 }
const sidecarPods = /** @type {const} */ (['productpage', 'reviews'])
/** Same for every peer: more ephemeral ports and short-lived TIME_WAIT, so connection churn never starves. */
const podSysctls = [
  'net.ipv4.ip_local_port_range=1024 65535',
  'net.ipv4.tcp_tw_reuse=1',
  'net.netfilter.nf_conntrack_tcp_timeout_time_wait=5',
]

/** @typedef {'productpage' | 'reviews'} Pod */
/**
 * mode: the inbound interception the peer needs in the pods' rules (REDIRECT when absent); markRule: an
 * iptables mangle OUTPUT rule the peer needs besides Istio's (HAProxy's TPROXY mark).
 * @typedef {{ name: string, argv(dir: string): string[], prepare?(dir: string): void, mode?: 'REDIRECT' | 'TPROXY', markRule?: string[] }} SidecarPeer
 */

export class BenchLab {
  #log = logger.createLogger({ level: 'warn' })
  /** @type {import('./lab.mjs').LabState | undefined} */
  #state
  /** @type {Record<Pod, boolean>} */
  #rules = { productpage: true, reviews: true }
  /** @type {Record<Pod, number | undefined>} */
  sidecarPids = { productpage: undefined, reviews: undefined }
  /** @type {string | undefined} */
  sidecarName
  /** @type {string[] | undefined} the running peer's extra mangle rule, present in the pods whose rules are on */
  #markRule
  /** @type {import('../src/proxy/config.js').RelayEngine | undefined} */
  #relay

  /** @param {string} lab */
  constructor(lab) {
    this.lab = lab
  }

  get state() {
    if (!this.#state) throw new Error('bench lab is not up')
    return this.#state
  }

  /** @param {Pod} pod */
  ns(pod) {
    return this.state.pods[pod]?.ns ?? ''
  }

  /**
   * @param {import('../src/proxy/config.js').RelayEngine} [relay] the lab's own sidecars' engine (the scripts' --relay)
   * @param {{ ambient?: boolean }} [options] ambient: the lab as `lab up --ambient` makes it (in-pod rules, the node's ztunnel)
   */
  async up(relay, { ambient = false } = {}) {
    this.#relay = relay
    const { state } = await lifecycle.up({
      lab: this.lab,
      rules: 'istio',
      log: this.#log,
      ...(relay ? { relay } : {}),
      ...(ambient ? { ambient: true } : {}),
      // no access log anywhere: the figure is the proxy's, not its log writer's
      sidecarFlags: ['--access-log', 'off'],
      ztunnelFlags: ['--access-log', 'off'],
    })
    this.#state = state
    this.#rules = { productpage: true, reviews: true }
    this.#markRule = undefined
    for (const pod of sidecarPods) {
      for (const s of podSysctls) await netns.execIn(this.ns(pod), ['sysctl', '-q', '-w', s], { allowFailure: true })
      this.sidecarPids[pod] = state.pods[pod]?.pids.sidecar
    }
    this.sidecarName = ambient ? 'ambient' : 'sidecar-lab'
    const dir = labState.ensurePodDir(this.lab, 'reviews')
    const argv = [process.execPath, join(root, 'bench/apps/server.mjs'), String(ports.http), String(ports.sink), String(ports.idle)]
    const pid = processes.startDetached(this.ns('reviews'), argv, join(dir, 'bench-server.log'), appUser)
    await processes.waitForLog(join(dir, 'bench-server.log'), /bench server listening/, pid)
  }

  async down() {
    return lifecycle.down(this.lab, this.#log)
  }

  /**
   * Warms the bench server's JIT as the unrecorded run before round 1 does, but from inside its own pod over
   * lo, where neither capture rules nor a ztunnel take the connections: after a rebuild the server is fresh.
   * @param {number} seconds
   */
  async warmServer(seconds) {
    const options = { url: `http://127.0.0.1:${ports.http}/`, connections: 10, duration: seconds }
    const r = /** @type {import('./apps/results.js').CannonRun} */ (
      await this.runJson('reviews', [process.execPath, join(root, 'dist/lab/cannon.js'), JSON.stringify(options)], (seconds + 40) * 1000)
    )
    if (r.error || !(r.requests > 0)) throw new Error(`bench server warm-up: ${r.error ?? 'no responses'}`)
    return r
  }

  /** Whether the lab is in ambient mode: no sidecars, the node's ztunnel serves both pods. */
  get ambient() {
    return !!this.#state?.ambient
  }

  /** The ztunnel's pid in ambient mode (one process for both pods), else undefined. */
  get ztunnelPid() {
    return this.#state?.ambient?.ztunnel
  }

  /**
   * Rebuilds the lab, in ambient mode or in sidecar mode: down, then up as `lab up` (--ambient) makes it, so
   * the ambient peer measures the ztunnel exactly as the lab starts it, and a fresh one each round.
   * @param {boolean} ambient
   */
  async rebuild(ambient) {
    await this.down()
    await this.up(this.#relay, { ambient })
    await this.warmServer(2)
  }

  /**
   * Replaces the sidecar in both pods by a fresh one of `peer` (also when it is the same kind: every round
   * starts from a fresh process, so memory at 0 connections is comparable).
   * @param {SidecarPeer} peer
   * @param {readonly Pod[]} [only] the pods to give this sidecar (default both)
   */
  async startSidecars(peer, only = sidecarPods) {
    if (this.ambient) throw new Error(`sidecar peer ${peer.name}: the lab is in ambient mode (rebuild(false) first)`)
    for (const pod of only) await killAndWait(this.sidecarPids[pod])
    await this.#setMode(peer.mode ?? 'REDIRECT', peer.markRule)
    for (const pod of only) {
      await killAndWait(this.sidecarPids[pod])
      const dir = labState.ensurePodDir(this.lab, pod)
      peer.prepare?.(dir)
      const pid = processes.startDetached(this.ns(pod), peer.argv(dir), join(dir, `${peer.name}.log`))
      this.sidecarPids[pod] = pid
      const podState = this.state.pods[pod]
      if (podState) podState.pids.sidecar = pid
      labState.writeState(this.state)
      await this.#waitListening(pod, pid, join(dir, `${peer.name}.log`))
    }
    this.sidecarName = peer.name
  }

  /**
   * Capture rules on or off per pod ('both', 'outbound' = client pod only, 'inbound' = server pod only, 'none').
   * @param {'both' | 'outbound' | 'inbound' | 'none'} position
   */
  async setPosition(position) {
    // in-pod rules in both pods and one ztunnel: no position but both
    if (this.ambient && position !== 'both') throw new Error(`ambient mode has the position both only, not ${position}`)
    /** @type {Record<Pod, boolean>} */
    const want = { productpage: position === 'both' || position === 'outbound', reviews: position === 'both' || position === 'inbound' }
    for (const pod of sidecarPods) {
      if (this.#rules[pod] === want[pod]) continue
      await this.#markRuleIn(pod, '-D')
      await lifecycle.applyRules(this.state, pod, !want[pod])
      this.#rules[pod] = want[pod]
      await this.#markRuleIn(pod, '-I')
    }
  }

  /**
   * Switches the pods' rules between REDIRECT and TPROXY (the generator's -m): the old mode's rules (and
   * TPROXY's routing) are removed and the new mode's applied in the pods whose rules are on.
   * @param {'REDIRECT' | 'TPROXY'} mode @param {string[] | undefined} markRule
   */
  async #setMode(mode, markRule) {
    if ((this.state.mode ?? 'REDIRECT') !== mode || this.#markRule !== markRule) {
      for (const pod of sidecarPods) {
        await this.#markRuleIn(pod, '-D')
        if (this.#rules[pod] && (this.state.mode ?? 'REDIRECT') !== mode) await lifecycle.applyRules(this.state, pod, true)
      }
      const changed = (this.state.mode ?? 'REDIRECT') !== mode
      this.state.mode = mode
      labState.writeState(this.state)
      this.#markRule = markRule
      for (const pod of sidecarPods) {
        if (this.#rules[pod] && changed) await lifecycle.applyRules(this.state, pod)
        await this.#markRuleIn(pod, '-I')
      }
    }
  }

  /** Adds (-I, first in mangle OUTPUT) or removes (-D) the running peer's extra rule in a pod whose rules are on. @param {Pod} pod @param {'-I' | '-D'} op */
  async #markRuleIn(pod, op) {
    if (!this.#markRule || !this.#rules[pod]) return
    const where = op === '-I' ? ['-I', 'OUTPUT', '1'] : ['-D', 'OUTPUT']
    await netns.execIn(this.ns(pod), ['iptables', '-t', 'mangle', ...where, ...this.#markRule], { allowFailure: op === '-D' })
  }

  /**
   * Runs a program in a pod as the app's user and returns its last stdout line as JSON, typed by the caller
   * (bench/apps/results.d.ts).
   * @param {Pod} pod @param {string[]} argv @param {number} timeoutMs
   * @returns {Promise<unknown>}
   */
  async runJson(pod, argv, timeoutMs) {
    const [program, ...args] = netns.inNetns(this.ns(pod), argv, appUser)
    const r = await exec.run(program ?? '', args, { timeoutMs, allowFailure: true })
    const last = r.stdout.trim().split('\n').pop() ?? ''
    try {
      return JSON.parse(last)
    } catch {
      throw new Error(`${argv.slice(1, 2).join(' ')} in ${pod} gave no result (exit ${r.code}): ${r.stderr.slice(-500) || last}`)
    }
  }

  /**
   * Runs a program in a pod as the app's user and returns its output (wrk, whose report is text).
   * @param {Pod} pod @param {string[]} argv @param {number} timeoutMs
   */
  async runText(pod, argv, timeoutMs) {
    const [program, ...args] = netns.inNetns(this.ns(pod), argv, appUser)
    return exec.run(program ?? '', args, { timeoutMs, allowFailure: true })
  }

  /**
   * A long-lived program in a pod as the app's user, spoken to over stdin/stdout (the idle-connection client).
   * @param {Pod} pod @param {string[]} argv
   */
  spawnInteractive(pod, argv) {
    const [program, ...args] = netns.inNetns(this.ns(pod), argv, appUser)
    return spawn(program ?? '', args, { stdio: ['pipe', 'pipe', 'inherit'] })
  }

  /** @param {Pod} pod @param {number} pid @param {string} logFile */
  async #waitListening(pod, pid, logFile) {
    const end = Date.now() + 15_000
    for (;;) {
      const r = await netns.execIn(this.ns(pod), ['ss', '-Hltn'], { allowFailure: true })
      if (/:15001\s/.test(r.stdout) && /:15006\s/.test(r.stdout)) return
      if (!exec.alive(pid)) throw new Error(`sidecar in ${pod} exited: ${readFileSync(logFile, 'utf8').slice(-1500)}`)
      if (Date.now() > end) throw new Error(`sidecar in ${pod} not listening on 15001 and 15006 after 15 s`)
      await sleep(50)
    }
  }
}

/**
 * Removes the lab on SIGINT or SIGTERM. The step running then fails as its processes vanish: `settle` lets
 * the removal finish before exiting, instead of crashing past it and leaving a namespace behind.
 * @param {BenchLab} lab
 */
export function interruptible(lab) {
  const guard = {
    stopping: false,
    /** @type {Promise<unknown> | undefined} */
    removing: undefined,
    /** @param {unknown} [err] rethrown when no signal came */
    async settle(err) {
      if (!guard.stopping) throw err
      await guard.removing
      process.exit(130)
    },
  }
  for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
    process.on(signal, () => {
      if (guard.stopping) return
      guard.stopping = true
      process.stderr.write(`\n${signal}: removing lab ${lab.lab}\n`)
      guard.removing = lab.down().catch(() => {})
      void guard.settle()
    })
  }
  return guard
}

/** @param {number | undefined} pid */
async function killAndWait(pid) {
  if (!exec.alive(pid)) return
  try {
    process.kill(/** @type {number} */ (pid), 'SIGKILL')
  } catch {
    return
  }
  while (exec.alive(pid)) await sleep(20)
}

/** VmRSS in bytes. @param {number | undefined} pid */
export function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

/** utime + stime in seconds (all threads). @param {number | undefined} pid */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /s, '')
    .split(' ')
  // after "pid (comm) ": state is field 3, so utime (14) and stime (15) sit at 11 and 12
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * Waits until the processes are quiet: less than 10 ms of CPU in each of two 250 ms windows in a row, or
 * maxMs at most. After the memory scenario closes thousands of connections, a sidecar goes on tearing them
 * down (and collecting their garbage) for a while; the next scenario must not pay for that.
 * @param {(number | undefined)[]} pids
 * @returns {Promise<number>} the milliseconds waited
 */
export async function quiet(pids, maxMs = 20_000) {
  const live = pids.filter((p) => exec.alive(p))
  const t0 = Date.now()
  let calm = 0
  let last = live.map(cpuSeconds)
  while (calm < 2 && Date.now() - t0 < maxMs) {
    await sleep(250)
    const now = live.map(cpuSeconds)
    calm = now.every((c, i) => c - (last[i] ?? 0) < 0.01) ? calm + 1 : 0
    last = now
  }
  return Date.now() - t0
}
