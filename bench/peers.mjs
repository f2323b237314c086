// @ts-check
// The peers compared in the same pods with the same capture rules: no sidecar (rules off), sidecar-lab's
// sidecar, and HAProxy standing in as the sidecar. Each sidecar peer gives the argv that starts it in a pod
// as root; both end up as uid/gid 1337, which the capture rules exempt.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './harness.mjs'

/** @typedef {import('./harness.mjs').SidecarPeer} SidecarPeer */
/** @typedef {'both' | 'outbound' | 'inbound' | 'none'} Position */

/** @type {SidecarPeer} */
export const sidecarLab = {
  name: 'sidecar-lab',
  // No access log: HAProxy logs nothing either, and the figure is the proxy's, not the log writer's.
  argv: () => [process.execPath, join(root, 'dist/cli.js'), 'proxy', '--access-log', 'off'],
}

/**
 * HAProxy in TCP mode as a sidecar. A `server` at 0.0.0.0 with no port connects to the connection's
 * destination address and port, which for a REDIRECTed socket HAProxy reads with SO_ORIGINAL_DST (Debian's
 * build has +NETFILTER); inbound connections leave from 127.0.0.6 like Envoy's, so the capture rules' lo
 * exemption lets them reach the app instead of looping back to 15006.
 */
export const haproxyConfig = `# HAProxy as a sidecar: Envoy's two virtual listeners in TCP mode (written by bench/peers.mjs)
global
    # two cores: one thread per core (HAProxy's documented setting; 2.6 picks the same from the CPU set)
    nbthread 2
    # bind as root, then run as the sidecar's uid/gid, which the capture rules exempt
    uid 1337
    gid 1337
    # no global maxconn: HAProxy derives it from the fd limit (a hard 20000 on this machine)

defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
    maxconn 10000

frontend virtualOutbound
    bind 0.0.0.0:15001
    default_backend PassthroughCluster

backend PassthroughCluster
    server original-dst 0.0.0.0

frontend virtualInbound
    bind 0.0.0.0:15006
    default_backend InboundPassthroughClusterIpv4

backend InboundPassthroughClusterIpv4
    source 127.0.0.6
    server original-dst 0.0.0.0
`

/** @type {SidecarPeer} */
export const haproxy = {
  name: 'haproxy',
  prepare: (dir) => writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig),
  // -db: stay in the foreground as one process (no master-worker), so its pid is the one measured
  argv: (dir) => ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')],
}

/**
 * The floor (bench/apps/floor-relay.mjs): node:net and our addon with nothing else, so the distance from
 * sidecar-lab to it is what sidecar-lab's own code costs, and the distance from it to HAProxy is Node's.
 * @type {SidecarPeer}
 */
export const nodeFloor = {
  name: 'node-floor',
  argv: () => ['setpriv', '--reuid=1337', '--regid=1337', '--clear-groups', process.execPath, join(root, 'bench/apps/floor-relay.mjs')],
}

/** sidecar-lab in TPROXY mode: transparent listener, upstream from the client's address, uid 0 / gid 1337. @type {SidecarPeer} */
export const sidecarLabTproxy = {
  name: 'sidecar-lab-tproxy',
  mode: 'TPROXY',
  argv: () => [...sidecarLab.argv(''), '--interception-mode', 'TPROXY'],
}

/**
 * HAProxy as a TPROXY sidecar: virtualInbound binds \`transparent\` (TPROXY hands it connections to any
 * address; their destination is the socket's own address) and connects to the app with \`source 0.0.0.0
 * usesrc clientip\` (a transparent socket bound to the client's address). It keeps root (usesrc needs
 * CAP_NET_ADMIN; HAProxy 2.6 drops capabilities with \`uid\`) and runs with gid 1337, which the rules
 * exempt, as Istio runs a TPROXY Envoy. HAProxy 2.6 cannot set SO_MARK on its server connections, so
 * the bench marks them 1337 with one mangle rule of its own (\`tproxyMarkRule\`), the mark sidecar-lab sets
 * with SO_MARK: without it the rules would divert HAProxy's connection to the app back into 15006.
 */
export const haproxyTproxyConfig = haproxyConfig
  .replace(/ {4}uid 1337\n/, '')
  .replace(
    "# bind as root, then run as the sidecar's uid/gid, which the capture rules exempt",
    '# root keeps CAP_NET_ADMIN for usesrc clientip; gid 1337 is exempt from capture',
  )
  .replace('    bind 0.0.0.0:15006\n', '    bind 0.0.0.0:15006 transparent\n')
  .replace('    source 127.0.0.6\n', '    source 0.0.0.0 usesrc clientip\n')

/**
 * mangle OUTPUT, first: HAProxy's connections to the app (gid 1337, over lo, from an address that is not the
 * pod's own: the client's) get the TPROXY mark, as SO_MARK 1337 gives sidecar-lab's.
 */
export const tproxyMarkRule = [
  '-o',
  'lo',
  '-p',
  'tcp',
  '-m',
  'addrtype',
  '!',
  '--src-type',
  'LOCAL',
  '-m',
  'owner',
  '--gid-owner',
  '1337',
  '-j',
  'MARK',
  '--set-mark',
  '1337',
]

/** @type {SidecarPeer} */
export const haproxyTproxy = {
  name: 'haproxy-tproxy',
  mode: 'TPROXY',
  markRule: tproxyMarkRule,
  prepare: (dir) => writeFileSync(join(dir, 'haproxy.cfg'), haproxyTproxyConfig),
  argv: (dir) => ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')],
}

/**
 * The peers in the order each round runs them, with the positions each is measured in. An optional peer runs
 * only when --peers names it.
 * @type {{ name: string, sidecar?: SidecarPeer, positions: Position[], optional?: boolean }[]}
 */
export const peers = [
  { name: 'direct', positions: ['none'] },
  { name: 'sidecar-lab', sidecar: sidecarLab, positions: ['both', 'outbound', 'inbound'] },
  { name: 'node-floor', sidecar: nodeFloor, positions: ['both', 'outbound', 'inbound'], optional: true },
  { name: 'haproxy', sidecar: haproxy, positions: ['both', 'outbound', 'inbound'] },
  // TPROXY changes only the inbound side, so outbound-only would measure REDIRECT again.
  { name: 'sidecar-lab-tproxy', sidecar: sidecarLabTproxy, positions: ['both', 'inbound'], optional: true },
  { name: 'haproxy-tproxy', sidecar: haproxyTproxy, positions: ['both', 'inbound'], optional: true },
]
