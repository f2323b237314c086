// The lab in ambient mode (lab up --ambient): no sidecar in any pod. istio-cni's in-pod rules go into the mesh
// pods (productpage and reviews; ratings stays out), and one ztunnel runs in the node's namespace (the lab's
// bridge namespace, which gets the node's own address on the bridge so the ztunnel reaches the lab's DNS
// server), serving both pods through listeners it opens inside them. The ztunnel gets a workload table
// (workloads.json: the mesh pods HBONE, ratings TCP) and the lab's identities, so productpage→reviews goes
// over HBONE (mutual TLS on 15008) and anything to ratings stays plain.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execIn } from '../sys/netns.js'
import { buildInpodPlan } from '../inpod/build.js'
import { inpodConfig } from '../inpod/config.js'
import { run } from '../sys/exec.js'
import { resolvConfPath, sidecarRegistry } from './dns.js'
import { labCaDir, labIdentityDir, makeLabIdentities } from './identities.js'
import { startDetached, waitForLog } from './processes.js'
import { pods, prefixLength, prefixLength6 } from './scene.js'
import { labDir, type LabState } from './state.js'

/** The node's address on the lab's bridge (the ztunnel's namespace). */
export const nodeAddress = { ip: '198.18.0.1', ip6: '2001:2::1' }

/** The pods istio-cni adds to the mesh: those that have a sidecar in sidecar mode. */
export function meshPods(): string[] {
  return pods.filter((p) => p.sidecar).map((p) => p.name)
}

/** istio-cni's flags for the lab's pods: IPv6 rules too (the pods are dual-stack), DNS capture when asked. */
export function inpodArgs(state: Pick<LabState, 'dnsCapture'>): string[] {
  return ['--ipv6', ...(state.dnsCapture ? ['--redirect-dns'] : [])]
}

export function ztunnelLog(lab: string): string {
  return join(labDir(lab), 'ztunnel.log')
}

export function agentLog(lab: string): string {
  return join(labDir(lab), 'cni-agent.log')
}

/** The node agent's ZDS socket, which the ztunnel connects to (ztunnel's default: /var/run/ztunnel/ztunnel.sock). */
export function zdsSocket(lab: string): string {
  return join(labDir(lab), 'ztunnel.sock')
}

/** The pods the node agent hands to the ztunnel (sidecar-lab cni-agent --pods). */
export function podsFile(lab: string): string {
  return join(labDir(lab), 'mesh-pods.json')
}

/** The ztunnel's workload table (--local-xds): every pod of the lab, HBONE for those in the mesh. */
export function workloadsFile(lab: string): string {
  return join(labDir(lab), 'workloads.json')
}

export function writeWorkloads(state: Pick<LabState, 'lab'>): void {
  const mesh = new Set(meshPods())
  const workloads = pods.map((p) => ({
    name: p.name,
    namespace: 'default',
    serviceAccount: p.name,
    addresses: [p.ip, p.ip6],
    node: 'node',
    protocol: mesh.has(p.name) ? 'HBONE' : 'TCP',
  }))
  writeFileSync(workloadsFile(state.lab), JSON.stringify({ workloads }, null, 2) + '\n')
}

export function ztunnelAccessLog(lab: string): string {
  return join(labDir(lab), 'ztunnel-access.log')
}

/** The in-pod rules and their routing into one pod, or out of it (cleanup). */
export async function applyInpodRules(state: LabState, pod: string, cliPath: string, cleanup = false): Promise<string> {
  const r = await run(process.execPath, [
    cliPath,
    'inpod-rules',
    ...inpodArgs(state),
    '--network-namespace',
    state.pods[pod]!.ns,
    ...(cleanup ? ['--cleanup-only'] : []),
  ])
  return r.stdout.trim()
}

export interface AmbientPids {
  agent?: number
  ztunnel?: number
}

/**
 * Gives the node its address, programs the mesh pods, starts the node agent with their list and the ztunnel,
 * which takes them from the agent over ZDS. Each pid is recorded (record) before it is waited for.
 */
export async function startAmbient(
  state: LabState,
  cliPath: string,
  record: (pids: AmbientPids) => void,
  relayFlags: string[] = [],
): Promise<void> {
  await execIn(state.bridgeNs, ['ip', 'addr', 'add', `${nodeAddress.ip}/${prefixLength}`, 'dev', 'br0'])
  await execIn(state.bridgeNs, ['ip', '-6', 'addr', 'add', `${nodeAddress.ip6}/${prefixLength6}`, 'dev', 'br0', 'nodad'])
  for (const name of meshPods()) await applyInpodRules(state, name, cliPath)
  await hostProbeRules(state)
  await makeLabIdentities(state.lab, meshPods())
  writeWorkloads(state)
  const pids: AmbientPids = {}
  writeFileSync(
    podsFile(state.lab),
    JSON.stringify(
      meshPods().map((name) => ({ name, netns: `/run/netns/${state.pods[name]!.ns}` })),
      null,
      2,
    ) + '\n',
  )
  pids.agent = startDetached(
    state.bridgeNs,
    [process.execPath, cliPath, 'cni-agent', '--zds', zdsSocket(state.lab), '--pods', podsFile(state.lab), '--log-format', 'json'],
    agentLog(state.lab),
  )
  record(pids)
  await waitForLog(agentLog(state.lab), /cni agent ready/, pids.agent)
  pids.ztunnel = startZtunnel(state, cliPath, relayFlags)
  record(pids)
  await waitForLog(ztunnelLog(state.lab), /ztunnel ready/, pids.ztunnel)
}

/** istio-cni's probe sets on the node, which it fills with the mesh pods' addresses (ipset, iptables backend). */
export const probeSets = { v4: 'istio-inpod-probes-v4', v6: 'istio-inpod-probes-v6' }

/**
 * The node's probe rule (istio-cni's AppendHostRules): kubelet's health probes to a mesh pod leave the node
 * SNATed to 169.254.7.127 (IPv6: fd16:9254:7127:1337:ffff:ffff:ffff:ffff), and the pod's rules let that source
 * past the ztunnel to the app. istio-cni fills the probe sets as pods join the mesh; here lab up does. The pods
 * answer the probe address through the node (kubelet's probes come from the node: a pod's default route).
 */
export async function hostProbeRules(state: LabState): Promise<void> {
  const ns = state.bridgeNs
  const config = inpodConfig({ ipv6: true })
  const plan = buildInpodPlan(config, { mode: 'host', nativeNftables: false })
  for (const [set, family, key] of [
    [probeSets.v4, 'inet', 'ip'],
    [probeSets.v6, 'inet6', 'ip6'],
  ] as const) {
    await execIn(ns, ['ipset', 'create', set, 'hash:ip', 'family', family, '-exist'])
    for (const name of meshPods()) await execIn(ns, ['ipset', 'add', set, state.pods[name]![key], '-exist'])
  }
  await execIn(ns, ['iptables-restore', '--noflush'], { input: plan.ipv4 })
  await execIn(ns, ['ip6tables-restore', '--noflush'], { input: plan.ipv6 })
  for (const name of meshPods()) {
    const pod = state.pods[name]!.ns
    await execIn(pod, ['ip', 'route', 'add', `${config.hostProbeSnatIPv4}/32`, 'via', nodeAddress.ip])
    await execIn(pod, ['ip', '-6', 'route', 'add', `${config.hostProbeSnatIPv6}/128`, 'via', nodeAddress.ip6])
  }
}

/** The ztunnel in the node's namespace, taking its pods from the lab's node agent; its pid. */
export function startZtunnel(state: LabState, cliPath: string, relayFlags: string[] = []): number {
  return startDetached(
    state.bridgeNs,
    [
      process.execPath,
      cliPath,
      'ztunnel',
      '--zds',
      zdsSocket(state.lab),
      '--access-log',
      ztunnelAccessLog(state.lab),
      '--registry',
      sidecarRegistry(),
      // HBONE between the mesh pods: the workload table and the lab's identities
      '--local-xds',
      workloadsFile(state.lab),
      '--ca-file',
      join(labCaDir(state.lab), 'root-cert.pem'),
      '--identity-dir',
      labIdentityDir(state.lab),
      // the pods' own resolv.conf (the same for all): the lab's DNS server and Kubernetes' search list
      '--dns-resolv-conf',
      resolvConfPath(state.pods[meshPods()[0]!]!.ns),
      '--log-format',
      'json',
      ...relayFlags,
    ],
    ztunnelLog(state.lab),
  )
}
