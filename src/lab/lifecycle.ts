// lab up / lab down: build the scene from nothing, and remove every trace of it, also after a crash.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidFlagError, PermissionError } from '../errors.js'
import type { Logger } from '../logger.js'
import { addPodHolder, imageAppServer, imageCli, removeContainers, requireImage, runInit, startContainer } from './docker.js'
import { dnsCaptureArgs, dnsNamespace, removeResolvConf, serviceUrl, sidecarRegistry, startLabDns, writeResolvConf } from './dns.js'
import { run } from '../sys/exec.js'
import { addNetns, addVeth, deleteNetns, execIn, listNetns, removeStrayVeths } from '../sys/netns.js'
import { alive } from '../sys/exec.js'
import { startDetached, stop, waitForLog } from './processes.js'
import { meshPods, startAmbient } from './ambient.js'
import {
  appPort,
  appUser,
  pods,
  prefixLength,
  prefixLength6,
  ruleArgs,
  sidecarContainer,
  sidecarModeFlags,
  sidecarProcessPrefix,
  type LabMode,
} from './scene.js'
import { recordCreated } from '../sys/ledger.js'
import { ensurePodDir, readState, removeState, writeState, type LabState } from './state.js'
import { cliCommand } from '../invocation.js'
import { defaultRelay, type RelayEngine } from '../proxy/config.js'

export const cliPath = fileURLToPath(new URL('../cli.js', import.meta.url))
const appServer = fileURLToPath(new URL('./app-server.js', import.meta.url))

export interface UpOptions {
  lab: string
  rules: 'istio' | 'legacy'
  /** inbound interception mode: REDIRECT (default) or TPROXY (the generator's -m TPROXY rules and routes) */
  mode?: LabMode
  /** extra flags for each sidecar */
  sidecarFlags?: string[]
  /** flags added to the ztunnel's in ambient mode (the bench's `--access-log off`, as its sidecars get) */
  ztunnelFlags?: string[]
  /** pods as Docker containers sharing a holder's namespace (src/lab/docker.ts) */
  docker?: boolean
  /** the injector's DNS capture (ISTIO_META_DNS_CAPTURE=true: --redirect-dns) */
  dnsCapture?: boolean
  /** ambient mode: istio-cni's in-pod rules and a ztunnel on the node instead of sidecars (ambient.ts) */
  ambient?: boolean
  /** the sidecars' relay engine (default defaultRelay) */
  relay?: RelayEngine
  log: Logger
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new PermissionError(`${what} needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) for network namespaces`)
}

export function isUp(state: LabState | undefined): boolean {
  if (!state?.complete) return false
  if (state.ambient && !(alive(state.ambient.ztunnel) && alive(state.ambient.agent))) return false
  return Object.values(state.pods).every((p) => alive(p.pids.app) && (state.ambient || !p.sidecar || alive(p.pids.sidecar)))
}

/** The rule generator as the init container runs it, into the pod's namespace. */
export async function applyRules(state: LabState, pod: string, cleanup = false): Promise<string> {
  const args = [...ruleArgs(state.rules, state.mode), ...(state.dnsCapture && state.rules !== 'legacy' ? dnsCaptureArgs : [])]
  if (state.docker) return runInit(state, pod, [...args, ...(cleanup ? ['--cleanup-only'] : [])])
  const r = await run(process.execPath, [
    cliPath,
    'iptables',
    ...args,
    '--network-namespace',
    state.pods[pod]!.ns,
    ...(cleanup ? ['--cleanup-only'] : []),
  ])
  return r.stdout.trim()
}

/** How a lab is built, in words: its pods' form and its capture rules. */
function labForm(state: {
  rules: LabState['rules']
  docker?: boolean | undefined
  mode?: LabState['mode'] | undefined
  dnsCapture?: boolean | undefined
  ambient?: unknown
  relay?: RelayEngine | undefined
}): string {
  const form = state.docker ? 'Docker containers' : 'network namespaces'
  const dns = state.dnsCapture ? ' with DNS capture' : ''
  // named when not the default (a lab from before the engines existed ran node's)
  const relay = state.relay ?? 'node'
  const engine = relay === defaultRelay ? '' : ` and the ${relay} relay engine`
  if (state.ambient) return `${form} in ambient mode (in-pod rules, a ztunnel on the node)${dns}${engine}`
  const rules = state.rules === 'legacy' ? 'legacy (Istio 1.10 layout)' : "injector's"
  return `${form} with the ${rules} rules in ${state.mode ?? 'REDIRECT'} mode${dns}${engine}`
}

export async function up(options: UpOptions): Promise<{ state: LabState; already: boolean }> {
  requireRoot('lab up')
  const { lab, log } = options
  const existing = readState(lab)
  const mode = options.mode ?? 'REDIRECT'
  const relay = options.relay ?? defaultRelay
  if (mode === 'TPROXY' && options.rules === 'legacy')
    throw new InvalidFlagError('--mode TPROXY needs the Istio layout: --compat legacy emulates REDIRECT mode only')
  if (isUp(existing)) {
    const have = labForm(existing!)
    const want = labForm({
      rules: options.rules,
      docker: options.docker === true,
      mode,
      dnsCapture: options.dnsCapture === true,
      ambient: options.ambient === true,
      relay,
    })
    if (have === want) return { state: existing!, already: true }
    // Rebuilding silently would cut whatever runs in the lab now; the user says so by taking it down first.
    throw new InvalidFlagError(`lab ${lab} is up as ${have}; this 'lab up' asks for ${want}: run '${cliCommand('lab down', lab)}' first`)
  }
  if (options.ambient && options.docker)
    throw new InvalidFlagError('--ambient runs with network namespaces only: the Docker form is not built yet')
  if (options.ambient && (options.rules === 'legacy' || mode === 'TPROXY'))
    throw new InvalidFlagError('--ambient has no sidecar rules to choose: give it without --compat and --mode')
  if (options.docker) await requireImage()
  await down(lab, log)

  const state: LabState = {
    lab,
    createdAt: new Date().toISOString(),
    bridgeNs: `${lab}-net`,
    rules: options.rules,
    mode,
    relay,
    complete: false,
    ...(options.docker ? { docker: true } : {}),
    ...(options.dnsCapture ? { dnsCapture: true } : {}),
    ...(options.ambient ? { ambient: {} } : {}),
    dns: { ns: dnsNamespace(lab) },
    pods: Object.fromEntries(pods.map((p) => [p.name, { ns: `${lab}-${p.name}`, ip: p.ip, ip6: p.ip6, sidecar: p.sidecar, pids: {} }])),
  }
  recordCreated('lab', lab)
  writeState(state) // before anything exists, so a crash from here on can be cleaned up
  try {
    await addNetns(state.bridgeNs)
    await execIn(state.bridgeNs, ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
    await execIn(state.bridgeNs, ['ip', 'link', 'set', 'br0', 'up'])
    state.dns!.pid = await startLabDns(state)
    writeState(state)
    for (const spec of pods) {
      const pod = state.pods[spec.name]!
      if (options.docker) await addPodHolder(state, spec.name)
      else await addNetns(pod.ns)
      writeState(state)
      await addVeth(
        { ns: pod.ns, ifname: 'eth0', cidr: `${spec.ip}/${prefixLength}`, cidr6: `${spec.ip6}/${prefixLength6}` },
        { ns: state.bridgeNs, ifname: `v-${spec.name}`.slice(0, 15) },
      )
      await execIn(state.bridgeNs, ['ip', 'link', 'set', `v-${spec.name}`.slice(0, 15), 'master', 'br0'])
      ensurePodDir(lab, spec.name)
      writeResolvConf(pod.ns)
    }
    if (state.ambient) {
      log.info({ pods: meshPods() }, 'istio-cni: in-pod rules, then the ztunnel')
      const ambient = state.ambient
      await startAmbient(
        state,
        cliPath,
        (pids) => {
          Object.assign(ambient, pids)
          writeState(state)
        },
        ['--relay', relay, ...(options.ztunnelFlags ?? [])],
      )
    }
    for (const spec of pods.filter((p) => p.sidecar && !state.ambient)) {
      const pod = state.pods[spec.name]!
      // ::6 is to IPv6 what 127.0.0.6 is to IPv4: the inbound passthrough source (127/8 is on lo already).
      await execIn(pod.ns, ['ip', '-6', 'addr', 'add', '::6/128', 'dev', 'lo'])
      log.info({ pod: spec.name, rules: state.rules, mode }, 'init: applying capture rules')
      await applyRules(state, spec.name)
      const dir = ensurePodDir(lab, spec.name)
      const sidecarLog = join(dir, 'sidecar.log')
      const sidecarArgs = [
        'proxy',
        '--access-log',
        join(dir, 'access.log'),
        ...sidecarModeFlags(mode),
        '--relay',
        relay,
        '--registry',
        sidecarRegistry(),
        ...(options.sidecarFlags ?? []),
      ]
      pod.pids.sidecar = options.docker
        ? await startContainer(
            state,
            spec.name,
            'sidecar',
            ['node', imageCli, ...sidecarArgs],
            sidecarLog,
            sidecarContainer(mode).user,
            sidecarContainer(mode).dockerArgs,
          )
        : startDetached(pod.ns, [...sidecarProcessPrefix(mode), process.execPath, cliPath, ...sidecarArgs], sidecarLog)
      writeState(state)
      await waitForLog(sidecarLog, /sidecar ready/, pod.pids.sidecar)
    }
    for (const spec of pods) {
      const pod = state.pods[spec.name]!
      const appLog = join(ensurePodDir(lab, spec.name), 'app.log')
      const appArgs = [spec.name, String(appPort), ...(spec.calls ? [serviceUrl(spec.calls)] : [])]
      pod.pids.app = options.docker
        ? await startContainer(state, spec.name, 'app', ['node', imageAppServer, ...appArgs], appLog, appUser)
        : startDetached(pod.ns, [process.execPath, appServer, ...appArgs], appLog, appUser)
      writeState(state)
      await waitForLog(appLog, /listening/, pod.pids.app)
    }
    state.complete = true
    writeState(state)
    return { state, already: false }
  } catch (err) {
    log.error({ err }, 'lab up failed: removing what it created')
    await down(lab, log)
    throw err
  }
}

/** Removes the lab's processes, namespaces (with their links and rules) and state, whatever state it is in. */
export async function down(lab: string, log: Logger): Promise<{ removed: string[] }> {
  requireRoot('lab down')
  const state = readState(lab)
  // Containers first (by label, so also those a crashed up never recorded); their namespaces follow below.
  const removed = (await removeContainers(lab)).map((name) => `container ${name}`)
  for (const pod of Object.values(state?.pods ?? {})) {
    await stop(pod.pids.app)
    await stop(pod.pids.sidecar)
  }
  await stop(state?.ambient?.ztunnel)
  await stop(state?.ambient?.agent)
  await stop(state?.dns?.pid)
  // By name, not from the state, so a crash that lost the state leaves no resolv.conf behind either.
  for (const p of pods) removeResolvConf(`${lab}-${p.name}`)
  // Exactly the lab's names, so a lab called 'a' never touches one called 'a-b'.
  const mine = new Set([`${lab}-net`, dnsNamespace(lab), ...pods.map((p) => `${lab}-${p.name}`)])
  for (const ns of (await listNetns(`${lab}-`)).filter((n) => mine.has(n))) {
    await deleteNetns(ns)
    removed.push(ns)
  }
  removed.push(...(await removeStrayVeths()))
  removeState(lab)
  if (removed.length) log.info({ removed }, 'lab down')
  return { removed }
}
