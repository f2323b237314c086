// Long-running processes the lab starts inside pods (apps, sidecars): detached, logging to files, and
// found again by pid when the lab is torn down or inspected.
import { spawn } from 'node:child_process'
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { LabProcessError } from '../errors.js'
import { alive } from '../sys/exec.js'
import { inNetns } from '../sys/netns.js'

export function startDetached(ns: string, argv: string[], logFile: string, user?: { uid: number; gid: number }): number {
  const [program, ...args] = inNetns(ns, argv, user)
  const out = openSync(logFile, 'a')
  try {
    const child = spawn(program!, args, { detached: true, stdio: ['ignore', out, out] })
    child.unref()
    if (!child.pid) throw new LabProcessError(`could not start ${argv.join(' ')} in ${ns}`)
    return child.pid
  } finally {
    closeSync(out)
  }
}

/** The uid a process runs as (after setpriv / the sidecar's own switch). */
export function uidOf(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

export async function stop(pid: number | undefined, graceMs = 2000): Promise<void> {
  if (!alive(pid)) return
  try {
    process.kill(pid!, 'SIGTERM')
  } catch {
    return
  }
  const end = Date.now() + graceMs
  while (alive(pid) && Date.now() < end) await sleep(50)
  if (alive(pid)) {
    try {
      process.kill(pid!, 'SIGKILL')
    } catch {
      // gone
    }
  }
}

/** Waits until a log file has a line matching pattern, or the process died, or the time is up. */
export async function waitForLog(file: string, pattern: RegExp, pid: number, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
    if (pattern.test(text)) return
    if (!alive(pid)) throw new LabProcessError(`process ${pid} exited before it was ready; its log (${file}):\n${text.slice(-2000)}`)
    if (Date.now() > end)
      throw new LabProcessError(`not ready after ${timeoutMs} ms (waiting for ${pattern} in ${file}):\n${text.slice(-2000)}`)
    await sleep(50)
  }
}
