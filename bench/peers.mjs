// @ts-check
// The peers compared in the same pods with the same capture rules: no sidecar (rules off), sidecar-lab's
// sidecar with either relay engine, HAProxy standing in as the sidecar (at its better thread count, and with
// splicing for bulk, and with TLS between the pair), the Node floor, and ambient mode (no sidecar: the node's
// ztunnel). Each sidecar peer gives the argv that starts it in a pod as root; all end up as uid/gid 1337,
// which the capture rules exempt.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { root } from './harness.mjs'

/** @type {typeof import('../src/native/addon.js')} */
const addon = await import(new URL('../dist/native/addon.js', import.meta.url).href)

/** @typedef {import('./harness.mjs').SidecarPeer} SidecarPeer */
/** @typedef {'both' | 'outbound' | 'inbound' | 'none'} Position */

/** @type {SidecarPeer} */
export const sidecarLab = {
  name: 'sidecar-lab',
  argv: () => [...proxyArgv(), '--relay', 'node'],
}

/** `sidecar-lab proxy` as every sidecar-lab peer starts it; each names its engine. */
function proxyArgv() {
  // No access log: HAProxy logs nothing either, and the figure is the proxy's, not the log writer's.
  return [process.execPath, join(root, 'dist/cli.js'), 'proxy', '--access-log', 'off']
}

/**
 * sidecar-lab with the addon's relay engine (`--relay native`): Node routes, the addon's thread moves the bytes.
 * @type {SidecarPeer}
 */
export const sidecarLabNative = {
  name: 'sidecar-lab-native',
  argv: () => [...proxyArgv(), '--relay', 'native'],
}

/**
 * Whether the built addon has the native relay engine (it exports relayStart), from the file the sidecar
 * loads (SIDECAR_LAB_ADDON or build/Release/sockopt.node); the reason when it has not.
 * @returns {{ available: boolean, reason: string }}
 */
export function nativeRelay() {
  const path = addon.addonPath()
  try {
    addon.loadAddon()
  } catch (err) {
    return { available: false, reason: `${path} could not be loaded: ${/** @type {Error} */ (err).message.split('\n')[0]}` }
  }
  return addon.addonHasRelay()
    ? { available: true, reason: `${path} exports relayStart` }
    : { available: false, reason: `${path} does not export relayStart (the addon was built without the native relay engine)` }
}

/**
 * HAProxy in TCP mode as a sidecar. A `server` at 0.0.0.0 with no port connects to the connection's
 * destination address and port, which for a REDIRECTed socket HAProxy reads with SO_ORIGINAL_DST (Debian's
 * build has +NETFILTER); inbound connections leave from 127.0.0.6 like Envoy's, so the capture rules' lo
 * exemption lets them reach the app instead of looping back to 15006.
 */
/**
 * splice: 'always' = \`option splice-request\` and \`option splice-response\` (splice(2) through pipes both ways);
 * 'auto' = \`option splice-auto\`, HAProxy's heuristic, which in a 300 MB one-stream test on loopback (HAProxy
 * 2.6.12, strace -c) made 0 splice calls (19,209 recvfrom + 19,205 sendto), where 'always' made 9,751 splice
 * calls and 2 recvfrom: so the bulk peer splices always, and splice-auto is an optional peer to check that.
 * @param {{ nbthread?: number, splice?: 'always' | 'auto' }} [options]
 */
export function haproxyConfigFor({ nbthread = 2, splice } = {}) {
  return `# HAProxy as a sidecar: Envoy's two virtual listeners in TCP mode (written by bench/peers.mjs)
global
    # 1 or 2 threads on the two cores: the bench tries both and keeps the better (bench/haproxy-best.mjs)
    nbthread ${nbthread}
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
${splice === 'always' ? '    # kernel splicing (splice(2) through pipes) in both directions: the bulk peer haproxy-splice\n    option splice-request\n    option splice-response\n' : ''}${splice === 'auto' ? "    # kernel splicing where HAProxy's heuristic judges it pays: the optional bulk peer haproxy-splice-auto\n    option splice-auto\n" : ''}
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
}

/** The config with HAProxy's defaults for two cores (nbthread 2), as the TPROXY variant starts from. */
export const haproxyConfig = haproxyConfigFor()

/**
 * HAProxy as a sidecar peer under `name` with the given thread count, splicing or not.
 * @param {string} name @param {{ nbthread?: number, splice?: 'always' | 'auto' }} [options] @returns {SidecarPeer}
 */
export function haproxyPeer(name, options) {
  return {
    name,
    prepare: (dir) => writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfigFor(options)),
    // -db: stay in the foreground as one process (no master-worker), so its pid is the one measured
    argv: (dir) => ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')],
  }
}

/**
 * TLS alone, no tunnel: the HAProxy sidecar pair with TLS between them (mutual, each side verifying the other
 * against the lab's CA), so a reader can tell what encryption costs from what HBONE's tunnelling adds. The
 * outbound HAProxy's server line speaks TLS to the original destination, the inbound's 15006 listener ends it.
 * Only the position both: one end alone would speak TLS to plaintext.
 * @param {{ nbthread?: number, certs: { ca: string, pem: string } }} options ca: the root certificate;
 *   pem: this pod's certificate chain and key in one file (HAProxy's crt)
 */
export function haproxyTlsConfigFor({ nbthread = 2, certs }) {
  return haproxyConfigFor({ nbthread })
    .replace(' (written by bench/peers.mjs)', ' with mutual TLS between the two sidecars (written by bench/peers.mjs)')
    .replace(
      'backend PassthroughCluster\n    server original-dst 0.0.0.0\n',
      `backend PassthroughCluster\n    server original-dst 0.0.0.0 ssl verify required ca-file ${certs.ca} crt ${certs.pem}\n`,
    )
    .replace('    bind 0.0.0.0:15006\n', `    bind 0.0.0.0:15006 ssl crt ${certs.pem} verify required ca-file ${certs.ca}\n`)
}

/** @type {string | undefined} the temp folder with the TLS peer's certificates, made once per run */
let tlsDir

/**
 * The lab's identities, as `sidecar-lab certs` makes them (a CA, a workload certificate per pod), in a temp
 * folder removed when the bench exits; HAProxy's crt wants the chain and key in one file.
 * @param {string} pod @returns {{ ca: string, pem: string }}
 */
export function tlsCerts(pod) {
  const cli = (/** @type {string[]} */ ...args) => execFileSync(process.execPath, [join(root, 'dist/cli.js'), 'certs', ...args])
  if (!tlsDir) {
    const dir = mkdtempSync(join(tmpdir(), 'slb-bench-tls-'))
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
    cli('init', '--dir', dir)
    tlsDir = dir
  }
  const id = join(tlsDir, 'default', pod)
  const pem = join(id, 'haproxy.pem')
  if (!existsSync(pem)) {
    cli('issue', '--dir', tlsDir, '--sa', pod)
    writeFileSync(pem, readFileSync(join(id, 'cert-chain.pem'), 'utf8') + readFileSync(join(id, 'key.pem'), 'utf8'), { mode: 0o600 })
  }
  return { ca: join(tlsDir, 'root-cert.pem'), pem }
}

/**
 * The TLS pair as a sidecar peer; each pod's HAProxy presents that pod's identity (the pod folder's name).
 * @param {{ nbthread?: number }} [options] @returns {SidecarPeer}
 */
export function haproxyTlsPeer({ nbthread } = {}) {
  return {
    name: 'haproxy-tls',
    prepare: (dir) =>
      writeFileSync(join(dir, 'haproxy.cfg'), haproxyTlsConfigFor({ ...(nbthread ? { nbthread } : {}), certs: tlsCerts(basename(dir)) })),
    argv: (dir) => ['haproxy', '-db', '-f', join(dir, 'haproxy.cfg')],
  }
}

/** HAProxy with 2 threads (its own choice for two cores). @type {SidecarPeer} */
export const haproxy = haproxyPeer('haproxy')

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
 * @typedef {{ name: string, label: string, sidecar?: SidecarPeer, ambient?: boolean, positions: Position[], optional?: boolean, scenarios?: string[] }} Peer
 * label: how tables and the chart name the peer; scenarios: the only scenarios it runs (all when absent);
 * ambient: no sidecar, the lab in ambient mode as `lab up --ambient` makes it (the node's ztunnel on the path).
 */

/**
 * The peers in the order each round runs them, with the positions each is measured in; HAProxy's with the
 * thread count the bench found better here. An optional peer runs only when --peers names it.
 * @param {{ nbthread?: number }} [options]
 * @returns {Peer[]}
 */
export function peerList({ nbthread = 2 } = {}) {
  const all = /** @type {Position[]} */ (['both', 'outbound', 'inbound'])
  return [
    { name: 'direct', label: 'direct', positions: ['none'] },
    { name: 'sidecar-lab', label: 'sidecar-lab (node relay)', sidecar: sidecarLab, positions: all },
    { name: 'sidecar-lab-native', label: 'sidecar-lab (native relay)', sidecar: sidecarLabNative, positions: all },
    { name: 'haproxy', label: `HAProxy (nbthread ${nbthread})`, sidecar: haproxyPeer('haproxy', { nbthread }), positions: all },
    {
      name: 'haproxy-splice',
      label: `HAProxy splice (nbthread ${nbthread})`,
      sidecar: haproxyPeer('haproxy-splice', { nbthread, splice: 'always' }),
      positions: all,
      scenarios: ['bulk-1', 'bulk-8'],
    },
    { name: 'node-floor', label: 'node-floor', sidecar: nodeFloor, positions: all },
    // TLS between the two sidecars: one end alone would speak TLS to plaintext, so both only
    { name: 'haproxy-tls', label: `HAProxy TLS (nbthread ${nbthread})`, sidecar: haproxyTlsPeer({ nbthread }), positions: ['both'] },
    {
      name: 'haproxy-splice-auto',
      label: `HAProxy splice-auto (nbthread ${nbthread})`,
      sidecar: haproxyPeer('haproxy-splice-auto', { nbthread, splice: 'auto' }),
      positions: all,
      scenarios: ['bulk-1', 'bulk-8'],
      optional: true,
    },
    // TPROXY changes only the inbound side, so outbound-only would measure REDIRECT again.
    { name: 'sidecar-lab-tproxy', label: 'sidecar-lab TPROXY', sidecar: sidecarLabTproxy, positions: ['both', 'inbound'], optional: true },
    { name: 'haproxy-tproxy', label: 'HAProxy TPROXY', sidecar: haproxyTproxy, positions: ['both', 'inbound'], optional: true },
    // Last, as switching the lab into ambient mode and back rebuilds it: one ztunnel serves both pods, so both only.
    { name: 'ambient', label: 'ambient (ztunnel)', ambient: true, positions: ['both'] },
  ]
}

/** The peers with HAProxy's default thread count (for --help and for importers that need the names). */
export const peers = peerList()
