// @ts-check
// The machine a run was made on, for the results and the README: cores, CPU model, kernel, versions, limits.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, release, totalmem } from 'node:os'
// the sidecar's own budget arithmetic, from dist/ as the bench runs it (a computed path: the type check stays out of dist/)
/** @type {{ relayPipesFor(limit: number): number, reserveFor(limit: number): number }} */
const { relayPipesFor, reserveFor } = await import(String(new URL('../dist/proxy/fd-budget.js', import.meta.url)))

/** The DNS proxy's forwards in flight at most (src/dns/config.ts maxInflight): each may hold a descriptor. */
const DNS_FORWARDS = 4096
/** What a sidecar holds before its first connection (listeners, the DNS sockets, node's own): measured about 40. */
const BASELINE_FDS = 64

/**
 * The most idle connections the memory scenario may hold through a native-relay sidecar with descriptor limit
 * `limit`, in thousands: what its budget leaves for connections (src/proxy/fd-budget.ts: the limit less a 2 %
 * reserve, the relay's pipes, the DNS proxy's forwards, a quarter of the rest at most), two descriptors each.
 * Asking for more has the sidecar close the rest at accept (downstream_global_cx_overflow), and the run fails.
 * @param {number} limit
 */
export function maxIdleFor(limit) {
  const budget = limit - BASELINE_FDS - reserveFor(limit) - 2 * relayPipesFor(limit)
  const dns = Math.min(DNS_FORWARDS, Math.floor(budget / 4))
  return Math.min(10_000, Math.floor((budget - dns) / 2 / 1000) * 1000)
}

export function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const haproxy = execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? ''
  const fdLimit = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 1024)
  return {
    nproc: availableParallelism(),
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    haproxy: /version (\S+)/.exec(haproxy)?.[1] ?? haproxy,
    fdLimit,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    // the sidecar measured is dist/ as built from this commit (plus any uncommitted change to src/)
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcChanged: git(['status', '--porcelain', '--', 'src']) !== '',
  }
}

/** @param {string[]} args */
function git(args) {
  try {
    return execFileSync('git', args, { encoding: 'utf8', cwd: new URL('..', import.meta.url) }).trim()
  } catch {
    return ''
  }
}
