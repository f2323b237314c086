// What the in-pod (ambient mode) rule builders take, and the fixed numbers istio-cni builds them from.
// Facts from istio/istio cni/pkg/config/config.go and cni/README.md; the names of the config fields follow
// istio-cni's AmbientConfig (node-wide) and PodLevelOverrides (per pod, from the pod's annotations).

/** The pod's override of the node-wide DNS capture (annotation ambient.istio.io/dns-capture). */
export type DnsProxy = 'unset' | 'enabled' | 'disabled'

export interface InpodConfig {
  /** ENABLE_INBOUND_IPV6: IPv6 rules as well */
  ipv6: boolean
  /** REDIRECT_DNS: node-wide DNS capture to ztunnel's DNS proxy */
  redirectDNS: boolean
  /** the pod's DNS override; 'unset' follows redirectDNS */
  dnsProxy: DnsProxy
  /** the pod is an ingress: no inbound capture and no probe exemption */
  ingress: boolean
  /** inbound on these interfaces is treated as the pod's outbound (VMs, DinD) */
  virtualInterfaces: string[]
  /** HOST_PROBE_SNAT_IP: the source the node gives kubelet's probes */
  hostProbeSnatIPv4: string
  /** HOST_PROBE_SNAT_IPV6, in canonical (RFC 5952) form */
  hostProbeSnatIPv6: string
  /** kubelet's uid: the nft host rule matches it (iptables uses --socket-exists instead) */
  kubeletUid: number | null
}

export const defaultInpodConfig: Readonly<InpodConfig> = Object.freeze({
  ipv6: false,
  redirectDNS: false,
  dnsProxy: 'unset',
  ingress: false,
  virtualInterfaces: [],
  hostProbeSnatIPv4: '169.254.7.127',
  hostProbeSnatIPv6: 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff',
  kubeletUid: null,
})

export function inpodConfig(overrides: Partial<InpodConfig> = {}): InpodConfig {
  return { ...defaultInpodConfig, virtualInterfaces: [...defaultInpodConfig.virtualInterfaces], ...overrides }
}

/** DNS is captured when the pod asks for it, or when the node does and the pod does not refuse. */
export function capturesDNS(c: InpodConfig): boolean {
  return c.dnsProxy === 'unset' ? c.redirectDNS : c.dnsProxy === 'enabled'
}

/** ztunnel marks its own packets with this (must match ztunnel's config), under INPOD_MASK. */
export const INPOD_MARK = 0x539
export const INPOD_MASK = 0xfff
/** the connmark (and then packet mark) that sends replies through the local route table, under its mask */
export const INPOD_TPROXY_MARK = 0x111
export const INPOD_TPROXY_MASK = 0xfff
export const INPOD_RESTORE_MASK = 0xffffffff
/** the policy routing table for marked packets, and the priority of its `ip rule` */
export const ROUTE_TABLE = 100
export const ROUTE_RULE_PRIORITY = 32764

export const ZTUNNEL_OUTBOUND_PORT = 15001
export const ZTUNNEL_INBOUND_PLAINTEXT_PORT = 15006
export const ZTUNNEL_INBOUND_PORT = 15008
export const DNS_CAPTURE_PORT = 15053

/** The ipset (iptables) / nft set of pod addresses that kubelet probes; -v4 and -v6 are appended. */
export const PROBE_SET = 'istio-inpod-probes'

export const hex = (n: number): string => `0x${n.toString(16)}`
