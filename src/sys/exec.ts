// Runs external programs (ip, iptables-restore, nft, ...) with errors that name the program and carry
// its stderr. The lab and the rule generator use this instead of child_process directly.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { CommandFailedError, MissingBinaryError, PermissionError } from '../errors.js'

export interface RunResult {
  stdout: string
  stderr: string
  code: number
}

export interface RunOptions {
  input?: string
  /** Resolve with the exit code instead of throwing when the program fails. */
  allowFailure?: boolean
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  /** How errors name the command, when argv would mislead (e.g. the nsenter wrapper around the real program). */
  describe?: string
}

const installHints: Record<string, string> = {
  ip: 'install iproute2 (apt-get install iproute2)',
  iptables: 'install iptables (apt-get install iptables)',
  'iptables-restore': 'install iptables (apt-get install iptables)',
  'iptables-save': 'install iptables (apt-get install iptables)',
  ip6tables: 'install iptables (apt-get install iptables)',
  'ip6tables-restore': 'install iptables (apt-get install iptables)',
  'ip6tables-save': 'install iptables (apt-get install iptables)',
  nft: 'install nftables (apt-get install nftables)',
  conntrack: 'install conntrack (apt-get install conntrack)',
  openssl: 'install openssl (apt-get install openssl)',
}

export function run(program: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 60_000,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new MissingBinaryError(program, installHints[program] ?? 'install it'))
      else reject(err)
    })
    child.on('close', (code, signal) => {
      const exit = code ?? 128
      if (exit === 0 || options.allowFailure) return resolve({ stdout, stderr, code: exit })
      const text = stderr.trim() || stdout.trim()
      const what = options.describe ?? `${program} ${args.join(' ')}`
      if (/Permission denied|Operation not permitted|must be root|you must be root/i.test(text)) {
        return reject(new PermissionError(`${what}: ${text} (needs root or CAP_NET_ADMIN)`))
      }
      reject(new CommandFailedError(`${what} failed (${signal ?? `exit ${exit}`}): ${text}`))
    })
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

/** Whether a process is running (a zombie is not). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false
  try {
    process.kill(pid, 0)
    // a zombie is not alive for our purposes
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(stat)
  } catch {
    return false
  }
}
