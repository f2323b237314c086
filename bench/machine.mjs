// @ts-check
// The machine a run was made on, for the results and the README: cores, CPU model, kernel, versions, limits.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, release, totalmem } from 'node:os'

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
