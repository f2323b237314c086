// argv -> settings for `sidecar-lab inpod-rules`. Every value and every combination is checked here, so the
// builders can trust what they get. Node-wide settings (istio-cni's AmbientConfig) and the pod's own
// (its annotations) are flags alike; the pod's are refused with --host, whose rules have none.
import { InvalidFlagError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { address, integer, interfaceNameProblem, oneOf } from '../flags/values.js'
import { splitList } from '../iptables/config.js'
import { quoteInput } from '../quote.js'
import type { InpodMode } from './build.js'
import { inpodConfig } from './config.js'
import type { InpodConfig } from './config.js'

export const COMMAND = 'sidecar-lab inpod-rules'

const options = {
  'dry-run': { type: 'boolean', short: 'n' },
  'native-nftables': { type: 'boolean' },
  ipv6: { type: 'boolean' },
  'redirect-dns': { type: 'boolean' },
  ingress: { type: 'boolean' },
  'virtual-interfaces': { type: 'string', value: 'LIST' },
  'dns-proxy': { type: 'string', value: 'enabled|disabled' },
  host: { type: 'boolean' },
  'host-probe-snat-ipv4': { type: 'string', value: 'ADDR' },
  'host-probe-snat-ipv6': { type: 'string', value: 'ADDR' },
  'kubelet-uid': { type: 'string', value: 'N' },
  'network-namespace': { type: 'string', value: 'PATH' },
  'cleanup-only': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

export interface InpodSettings {
  config: InpodConfig
  mode: InpodMode
  dryRun: boolean
  nativeNftables: boolean
  /** '' = the current namespace */
  networkNamespace: string
  /** remove the rules and the routing instead of applying them */
  cleanupOnly: boolean
  help: boolean
}

const POD_ONLY = ['ingress', 'virtual-interfaces', 'dns-proxy'] as const

export function parseInpodFlags(argv: readonly string[]): InpodSettings {
  const { values: v } = parseCommandArgs(argv, options, COMMAND)
  const mode: InpodMode = v.host ? 'host' : 'pod'
  const nativeNftables = v['native-nftables'] ?? false
  if (mode === 'host') {
    for (const name of POD_ONLY) {
      if (v[name] !== undefined) {
        throw new InvalidFlagError(`--${name} is a pod's setting; --host builds the node's probe rules, which have none`)
      }
    }
  }
  const kubeletUid = v['kubelet-uid'] === undefined ? null : integer('kubelet-uid', v['kubelet-uid'], 0, 0, 0xfffffffe)
  if (kubeletUid !== null && !(mode === 'host' && nativeNftables)) {
    throw new InvalidFlagError(
      '--kubelet-uid is for --host --native-nftables only: the iptables host rule matches any local socket (--socket-exists)',
    )
  }
  if (kubeletUid === null && mode === 'host' && nativeNftables) {
    throw new InvalidFlagError(
      "--host --native-nftables needs --kubelet-uid N: nft has no --socket-exists, so the rule matches kubelet's uid",
    )
  }
  const defaults = inpodConfig()
  const config = inpodConfig({
    ipv6: v.ipv6 ?? false,
    redirectDNS: v['redirect-dns'] ?? false,
    dnsProxy: v['dns-proxy'] === undefined ? 'unset' : oneOf('dns-proxy', v['dns-proxy'], ['enabled', 'disabled'] as const),
    ingress: v.ingress ?? false,
    virtualInterfaces: v['virtual-interfaces'] === undefined ? [] : interfaceList(v['virtual-interfaces']),
    hostProbeSnatIPv4: snatIPv4(v['host-probe-snat-ipv4'] ?? defaults.hostProbeSnatIPv4),
    hostProbeSnatIPv6: snatIPv6(v['host-probe-snat-ipv6'] ?? defaults.hostProbeSnatIPv6),
    kubeletUid,
  })
  if (v['cleanup-only'] && v['dry-run']) {
    throw new InvalidFlagError('--cleanup-only and --dry-run: printing what cleanup removes is not built; choose one')
  }
  const netns = v['network-namespace']
  if (netns !== undefined && netns.trim() === '')
    throw new InvalidFlagError('--network-namespace: give a path (/proc/PID/ns/net) or a name')
  return {
    config,
    mode,
    dryRun: v['dry-run'] ?? false,
    nativeNftables,
    networkNamespace: netns ?? '',
    cleanupOnly: v['cleanup-only'] ?? false,
    help: v.help ?? false,
  }
}

/** istio-cni's split of the reroute-virtual-interfaces annotation: commas, blanks trimmed, empties dropped. */
function interfaceList(text: string): string[] {
  const list = splitList(text)
  if (list.length === 0) throw new InvalidFlagError(`--virtual-interfaces: ${quoteInput(text)} names no interface (eth1,eth2)`)
  for (const nic of list) {
    const why = interfaceNameProblem(nic)
    if (why) throw new InvalidFlagError(`--virtual-interfaces: interface ${quoteInput(nic)} ${why}`)
  }
  return list
}

function snatIPv4(text: string): string {
  address('host-probe-snat-ipv4', text, 4)
  if (text === '0.0.0.0') throw new InvalidFlagError('--host-probe-snat-ipv4: 0.0.0.0 cannot be a source address')
  return text
}

/** The address in the form Istio prints it (Go's netip: lower case, the longest run of zero groups as ::). */
function snatIPv6(text: string): string {
  const flag = 'host-probe-snat-ipv6'
  if (text.includes('%')) throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} has a zone; give a plain IPv6 address`)
  address(flag, text, 6)
  // The URL parser writes IPv6 hosts in RFC 5952 form, as Go does (IPv4-mapped aside, refused below).
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1)
  if (canonical === '::') throw new InvalidFlagError(`--${flag}: :: cannot be a source address`)
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(canonical)) {
    throw new InvalidFlagError(`--${flag}: ${quoteInput(text)} is an IPv4-mapped address; the IPv6 SNAT source must be IPv6`)
  }
  return canonical
}

const flagHelp: Array<[string, string]> = [
  ['-n, --dry-run', 'print the rules on stdout, change nothing'],
  ['--native-nftables', 'nftables (an nft script) instead of iptables-restore input'],
  ['--ipv6', 'IPv6 rules too (ENABLE_INBOUND_IPV6)'],
  ['--redirect-dns', "node-wide: DNS to ztunnel's DNS proxy, port 15053 (REDIRECT_DNS)"],
  ['--dns-proxy enabled|disabled', "the pod's override of --redirect-dns (ambient.istio.io/dns-capture)"],
  ['--ingress', 'no inbound capture (ambient.istio.io/bypass-inbound-capture)'],
  ['--virtual-interfaces LIST', "inbound TCP on these goes to ztunnel's outbound port 15001"],
  ['--host', "the node's probe SNAT rules instead of the pod's (no pod flags)"],
  ['--host-probe-snat-ipv4 ADDR', 'source of kubelet probes (HOST_PROBE_SNAT_IP) [169.254.7.127]'],
  ['--host-probe-snat-ipv6 ADDR', 'IPv6 source of probes [fd16:9254:7127:1337:ffff:ffff:ffff:ffff]'],
  ['--kubelet-uid N', "kubelet's uid for the nft host rule (--host --native-nftables)"],
  ['--network-namespace PATH', 'the namespace to program (name in /run/netns or a path) [current]'],
  ['--cleanup-only', 'remove the in-pod rules and the policy routing'],
  ['-h, --help', 'this help'],
]

export function helpText(): string {
  const width = Math.max(...flagHelp.map(([f]) => f.length))
  return [
    `usage: ${COMMAND} --dry-run [flags]`,
    '',
    "istio-cni's ambient-mode rules: what its node agent puts in each pod's network namespace to send",
    "the pod's traffic to ztunnel (ports 15001, 15006, 15008, DNS 15053), or with --host the node's SNAT",
    "of kubelet's health probes. --dry-run prints them as Istio writes them. In-pod rules also need",
    'policy routing, which istio-cni sets up over netlink; --dry-run names it on stderr:',
    '  ip route replace local 0.0.0.0/0 dev lo table 100',
    '  ip rule add fwmark 0x111/0xfff pref 32764 lookup 100',
    'Without --dry-run the in-pod rules and the routing are applied (again: replaced), with',
    "--cleanup-only removed. --host rules are only printed: they need istio-cni's probe sets.",
    '',
    'flags:',
    ...flagHelp.map(([f, meaning]) => `  ${f.padEnd(width)}  ${meaning}`),
    '',
  ].join('\n')
}
