// The lab's one place of record: /run/sidecar-lab/<lab>/state.json plus each pod's logs beside it.
// `up` writes what it is about to create before creating it, so `down` can remove a half-finished lab.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidFlagError } from '../errors.js'
import { quoteInput } from '../quote.js'
import type { RelayEngine } from '../proxy/config.js'

export interface PodState {
  ns: string
  ip: string
  ip6: string
  sidecar: boolean
  pids: { app?: number; sidecar?: number }
  /** container ids, in the Docker form (lab up --docker) */
  containers?: { holder?: string; sidecar?: string; app?: string }
}

export interface LabState {
  lab: string
  createdAt: string
  bridgeNs: string
  /** 'istio' (the injector's arguments) or 'legacy' (the seed listing's layout) */
  rules: 'istio' | 'legacy'
  /** inbound interception mode (absent in a state written before modes existed: REDIRECT) */
  mode?: 'REDIRECT' | 'TPROXY'
  pods: Record<string, PodState>
  complete: boolean
  /** pods are Docker containers (src/lab/docker.ts) instead of bare namespaces and processes */
  docker?: boolean
  /** the lab's DNS server (src/lab/dns.ts): its namespace and dnsmasq's pid */
  dns?: { ns: string; pid?: number }
  /** the injector's layout with ISTIO_META_DNS_CAPTURE=true (--redirect-dns) */
  dnsCapture?: boolean
  /** ambient mode (src/lab/ambient.ts): in-pod rules and one ztunnel in the bridge namespace, no sidecars */
  ambient?: { agent?: number; ztunnel?: number }
  /** the sidecars' relay engine (lab up --relay; absent in a state written before engines existed: node) */
  relay?: RelayEngine
}

export function stateRoot(): string {
  return process.env.SIDECAR_LAB_STATE_DIR ?? '/run/sidecar-lab'
}

export function labDir(lab: string): string {
  return join(stateRoot(), lab)
}

export function podDir(lab: string, pod: string): string {
  return join(labDir(lab), pod)
}

export function readState(lab: string): LabState | undefined {
  const file = join(labDir(lab), 'state.json')
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState
  } catch {
    return undefined
  }
}

export function writeState(state: LabState): void {
  const dir = labDir(state.lab)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n')
}

/** A pod's folder, writable by the sidecar's and the app's users. */
export function ensurePodDir(lab: string, pod: string): string {
  const dir = podDir(lab, pod)
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o777)
  return dir
}

export function removeState(lab: string): void {
  rmSync(labDir(lab), { recursive: true, force: true })
}

/** Lab names become namespace names and folder names: keep them short and plain. */
export function checkLabName(lab: string): string | undefined {
  return /^[a-z][a-z0-9-]{0,23}$/.test(lab)
    ? undefined
    : `lab name ${quoteInput(lab)} must be 1-24 characters of a-z, 0-9 and -, starting with a letter`
}

export const defaultLab = 'sidecar-lab'

/** The value of --lab (lab, demo, trace), checked: the default when not given. */
export function labFlag(text: string | undefined): string {
  const lab = text ?? defaultLab
  const problem = checkLabName(lab)
  if (problem) throw new InvalidFlagError(`--lab: ${problem}`)
  return lab
}
