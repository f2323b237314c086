// The walkthrough's scene: productpage calls reviews, both with a sidecar; reviews calls ratings on each request
// (as Bookinfo's reviews does), so reviews' own outbound call takes the capture path the walkthrough's steps 9-15
// describe; ratings has no sidecar, for comparison.
// Every pod is a network namespace on one bridge that lives in a namespace of the lab's own.

import { InvalidFlagError } from '../errors.js'
import { formatHostPort } from '../net/address.js'

export interface PodSpec {
  name: 'productpage' | 'reviews' | 'ratings'
  ip: string
  ip6: string
  sidecar: boolean
  /** the service this pod's app calls on each request, if any */
  calls?: string
}

export const appPort = 9080
/** the ordinary app user; the sidecar runs as 1337 */
export const appUser = { uid: 1000, gid: 1000 }
/** the sidecar's user, exempt from capture (-u 1337); a container starts as it, a process switches to it */
export const sidecarUser = { uid: 1337, gid: 1337 }
export const prefixLength = 24
export const prefixLength6 = 64

export const pods: PodSpec[] = [
  { name: 'productpage', ip: '198.18.0.10', ip6: '2001:2::10', sidecar: true, calls: 'reviews' },
  { name: 'reviews', ip: '198.18.0.20', ip6: '2001:2::20', sidecar: true, calls: 'ratings' },
  { name: 'ratings', ip: '198.18.0.30', ip6: '2001:2::30', sidecar: false },
]

/**
 * The arguments Istio's sidecar injector passes to istio-iptables, plus --dual-stack: the lab's pods have
 * IPv6 addresses too, and istio-iptables programs ip6tables only when the pod's first address is IPv6 or
 * dual-stack is on (ISTIO_DUAL_STACK); without it IPv6 traffic would bypass both sidecars unseen.
 */
export const injectorArgs = [
  '-p',
  '15001',
  '-z',
  '15006',
  '-u',
  '1337',
  '-m',
  'REDIRECT',
  '-i',
  '*',
  '-b',
  '*',
  '-d',
  '15090,15021,15020',
  '--dual-stack',
]

/** The flags that reproduce the seed listing's older layout (Istio about 1.10, DNS capture on). */
export const legacyArgs = [
  '--compat',
  'legacy',
  '-p',
  '15001',
  '-z',
  '15006',
  '-u',
  '1337',
  '-g',
  '1337',
  '-m',
  'REDIRECT',
  '-i',
  '*',
  '-b',
  '*',
  '-d',
  '22,15020,15021,15090',
  '-o',
  '15020',
  '--redirect-dns',
  '--capture-all-dns',
  '--dns-servers',
  '198.18.0.53',
  '--dual-stack',
]

export type LabMode = 'REDIRECT' | 'TPROXY'

/** The generator's arguments for a lab: the layout's, with -m set to the lab's inbound interception mode. */
export function ruleArgs(rules: 'istio' | 'legacy', mode: LabMode = 'REDIRECT'): string[] {
  const args = [...(rules === 'legacy' ? legacyArgs : injectorArgs)]
  args[args.indexOf('-m') + 1] = mode
  return args
}

/**
 * The sidecar's own flags for a mode. TPROXY: the proxy keeps uid 0 (and CAP_NET_ADMIN for its transparent
 * sockets) with gid 1337, which the rules exempt, as Istio's injector runs a TPROXY sidecar.
 */
export function sidecarModeFlags(mode: LabMode = 'REDIRECT'): string[] {
  return mode === 'TPROXY' ? ['--interception-mode', 'TPROXY'] : []
}

/**
 * The sidecar container's user and capabilities in a mode. TPROXY, as Istio's injector: uid 0 with gid 1337,
 * every capability dropped but NET_ADMIN (transparent sockets, SO_MARK) and SETGID (the proxy clears its
 * supplementary groups); REDIRECT: uid 1337 with Docker's defaults.
 */
export function sidecarContainer(mode: LabMode = 'REDIRECT'): { user: { uid: number; gid: number }; dockerArgs: string[] } {
  if (mode === 'TPROXY')
    return { user: { uid: 0, gid: sidecarUser.gid }, dockerArgs: ['--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN', '--cap-add', 'SETGID'] }
  return { user: sidecarUser, dockerArgs: [] }
}

/**
 * What a sidecar process is started under (before node): in TPROXY mode root keeps only NET_ADMIN and SETGID
 * (its bounding set), as the container form does with --cap-drop ALL --cap-add NET_ADMIN.
 */
export function sidecarProcessPrefix(mode: LabMode = 'REDIRECT'): string[] {
  return mode === 'TPROXY' ? ['setpriv', '--bounding-set', '-all,+net_admin,+setgid', '--inh-caps', '-all'] : []
}

export function podSpec(name: string): PodSpec | undefined {
  return pods.find((p) => p.name === name)
}

export function podUrl(name: string): string {
  const p = podSpec(name)
  if (!p) throw new InvalidFlagError(`no pod '${name}': the lab's pods are ${pods.map((q) => q.name).join(', ')}`)
  return `http://${formatHostPort(p.ip, appPort)}/`
}
