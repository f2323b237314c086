// The lab's kube-dns stand-in: dnsmasq (Debian's dnsmasq-base) in a namespace of its own on the lab's
// bridge at 198.18.0.53, knowing the lab's services in namespace `default` and one name outside the mesh
// (db.lab.test). Every pod gets Kubernetes' resolv.conf pointing at it: `ip netns exec` bind-mounts
// /etc/netns/<ns>/resolv.conf over /etc/resolv.conf for every program started in the pod, the sidecar too.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { addNetns, addVeth, execIn } from '../sys/netns.js'
import { startDetached, waitForLog } from './processes.js'
import { pods, prefixLength, prefixLength6 } from './scene.js'
import { labDir, type LabState } from './state.js'

export const labDns = { ip: '198.18.0.53', ip6: '2001:2::53' }
export const serviceNamespace = 'default'
export const kubernetesSearch = [`${serviceNamespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local']
/** A name only the lab's DNS server knows (the sidecar's table does not): it must be forwarded. */
export const outsideName = { name: 'db.lab.test', ip: '198.18.0.30' }
/** The lab's DNS server answers with this TTL, the sidecar's table with Istio's 30 s: the answer tells who answered. */
export const labDnsTtl = 10

/** The flags the injector adds for ISTIO_META_DNS_CAPTURE=true (the servers: what resolv.conf names). */
export const dnsCaptureArgs = ['--redirect-dns', '--dns-servers', `${labDns.ip},${labDns.ip6}`]

export function dnsNamespace(lab: string): string {
  return `${lab}-dns`
}

export function resolvConf(): string {
  return `nameserver ${labDns.ip}\nsearch ${kubernetesSearch.join(' ')}\noptions ndots:5\n`
}

/**
 * The mesh's services for the sidecar's name table (--registry NAMESPACE/NAME=ADDRESS). IPv4 only, like
 * a single-stack Kubernetes cluster and the lab's DNS server: AAAA for a service is NOERROR with no data.
 */
export function sidecarRegistry(): string {
  return pods.map((p) => `${serviceNamespace}/${p.name}=${p.ip}`).join(',')
}

function dnsmasqConf(): string {
  const lines = [
    'no-resolv',
    'no-hosts',
    'pid-file=',
    'port=53',
    'log-queries=extra',
    'log-facility=-',
    `local-ttl=${labDnsTtl}`,
    // authoritative for these: unknown names are NXDOMAIN, never sent anywhere (nothing routes out)
    'local=/cluster.local/',
    'local=/lab.test/',
    ...pods.map((p) => `host-record=${p.name}.${serviceNamespace}.svc.cluster.local,${p.ip}`),
    `host-record=${outsideName.name},${outsideName.ip}`,
  ]
  return lines.join('\n') + '\n'
}

/** Where `ip netns exec` finds a pod's resolv.conf to bind-mount over /etc/resolv.conf. */
export function resolvConfPath(ns: string): string {
  return `/etc/netns/${ns}/resolv.conf`
}

export function writeResolvConf(ns: string): void {
  mkdirSync(`/etc/netns/${ns}`, { recursive: true })
  writeFileSync(resolvConfPath(ns), resolvConf())
}

export function removeResolvConf(ns: string): void {
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true })
}

/** The DNS namespace on the bridge and dnsmasq in it; returns dnsmasq's pid. */
export async function startLabDns(state: LabState): Promise<number> {
  const ns = dnsNamespace(state.lab)
  await addNetns(ns)
  await addVeth(
    { ns, ifname: 'eth0', cidr: `${labDns.ip}/${prefixLength}`, cidr6: `${labDns.ip6}/${prefixLength6}` },
    { ns: state.bridgeNs, ifname: 'v-dns' },
  )
  await execIn(state.bridgeNs, ['ip', 'link', 'set', 'v-dns', 'master', 'br0'])
  const dir = join(labDir(state.lab), 'dns')
  mkdirSync(dir, { recursive: true })
  const conf = join(dir, 'dnsmasq.conf')
  writeFileSync(conf, dnsmasqConf())
  const log = join(dir, 'dnsmasq.log')
  const pid = startDetached(ns, ['dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`], log)
  await waitForLog(log, /started, version/, pid)
  return pid
}

export function dnsLogPath(lab: string): string {
  return join(labDir(lab), 'dns', 'dnsmasq.log')
}

/** The URL an app calls another service by: its short name, as in Kubernetes, so the call goes through DNS. */
export function serviceUrl(service: string): string {
  return `http://${service}:9080/`
}
