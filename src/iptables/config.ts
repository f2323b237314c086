// What the rule builders take. Field names mirror the configuration fields of Istio's own builder (as in
// test/fixtures/cases.json) in camelCase, so a conformance case maps onto this type key for key.
// Lists stay comma-separated strings, as istio-iptables keeps them: the builders split them.

export interface RuleConfig {
  /** --envoy-port: outbound redirect target */
  proxyPort: number
  /** --inbound-capture-port: inbound redirect / TPROXY target */
  inboundCapturePort: number
  /** --inbound-tunnel-port: HBONE port, never captured */
  inboundTunnelPort: number
  /** --proxy-uid: comma list of UIDs exempt from capture */
  proxyUID: string
  /** --proxy-gid: comma list of GIDs exempt from capture */
  proxyGID: string
  /** --istio-inbound-tproxy-mark */
  inboundTProxyMark: number
  /** --istio-inbound-tproxy-route-table */
  inboundTProxyRouteTable: number
  /** ISTIO_OUTBOUND_OWNER_GROUPS: groups whose traffic is captured ('*' = all) */
  ownerGroupsInclude: string
  /** ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: groups never captured (only with include '*') */
  ownerGroupsExclude: string
  /** ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR */
  hostIPv4LoopbackCidr: string
  /** --istio-inbound-interception-mode: 'TPROXY', anything else is REDIRECT */
  inboundInterceptionMode: string
  /** --istio-inbound-ports: '' none, '*' all, else a port list */
  inboundPortsInclude: string
  /** --istio-local-exclude-ports (honoured only with inboundPortsInclude '*') */
  inboundPortsExclude: string
  /** --istio-service-cidr: '' none, '*' all, else CIDRs (v4 and v6 mixed) */
  outboundIPRangesInclude: string
  /** --istio-service-exclude-cidr */
  outboundIPRangesExclude: string
  /** --istio-outbound-ports */
  outboundPortsInclude: string
  /** --istio-local-outbound-ports-exclude */
  outboundPortsExclude: string
  /** --kube-virt-interfaces */
  rerouteVirtualInterfaces: string
  /** --istio-exclude-interfaces */
  excludeInterfaces: string
  /** --redirect-dns */
  redirectDNS: boolean
  /** --capture-all-dns */
  captureAllDNS: boolean
  /** --dual-stack / --enable-ipv6 */
  enableIPv6: boolean
  /** --drop-invalid */
  dropInvalid: boolean
  /** IPv4 DNS servers (--dns-servers; istio-iptables reads them from /etc/resolv.conf) */
  dnsServersV4: string[]
  /** IPv6 DNS servers */
  dnsServersV6: string[]
}

export type Compat = 'current' | 'legacy'

/** How the command runs, beside what the rules are. */
export interface RunOptions {
  dryRun: boolean
  nativeNftables: boolean
  compat: Compat
  explain: boolean
  cleanupOnly: boolean
  reconcile: boolean
  forceApply: boolean
  /** '' = the current namespace */
  networkNamespace: string
  /** --log-format as given; undefined: $SIDECAR_LAB_LOG_FORMAT, else by stderr (src/log-format.ts) */
  logFormat?: string
  help: boolean
}

export interface IptablesSettings {
  rules: RuleConfig
  run: RunOptions
}

export const defaultRuleConfig: Readonly<RuleConfig> = Object.freeze({
  proxyPort: 15001,
  inboundCapturePort: 15006,
  inboundTunnelPort: 15008,
  proxyUID: '1337',
  proxyGID: '1337',
  inboundTProxyMark: 1337,
  inboundTProxyRouteTable: 133,
  ownerGroupsInclude: '*',
  ownerGroupsExclude: '',
  hostIPv4LoopbackCidr: '127.0.0.1/32',
  inboundInterceptionMode: '',
  inboundPortsInclude: '',
  inboundPortsExclude: '',
  outboundIPRangesInclude: '',
  outboundIPRangesExclude: '',
  outboundPortsInclude: '',
  outboundPortsExclude: '',
  rerouteVirtualInterfaces: '',
  excludeInterfaces: '',
  redirectDNS: false,
  captureAllDNS: false,
  enableIPv6: false,
  dropInvalid: false,
  dnsServersV4: [],
  dnsServersV6: [],
})

export const defaultRunOptions: Readonly<RunOptions> = Object.freeze({
  dryRun: false,
  nativeNftables: false,
  compat: 'current',
  explain: false,
  cleanupOnly: false,
  reconcile: false,
  forceApply: false,
  networkNamespace: '',
  help: false,
})

/** A full configuration from the defaults and some overrides (fresh arrays, so callers may mutate). */
export function ruleConfig(overrides: Partial<RuleConfig> = {}): RuleConfig {
  return {
    ...defaultRuleConfig,
    dnsServersV4: [...defaultRuleConfig.dnsServersV4],
    dnsServersV6: [...defaultRuleConfig.dnsServersV6],
    ...overrides,
  }
}

/** Istio's list split: comma separated, blanks trimmed, empty entries dropped ("6000,7000," is two ports). */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/** Constants istio-iptables does not expose as flags. */
export const OUTBOUND_MARK = 1338
export const DNS_CAPTURE_PORT = 15053
export const INBOUND_PASSTHROUGH_V4 = '127.0.0.6/32'
export const INBOUND_PASSTHROUGH_V6 = '::6/128'
export const LOOPBACK_V6 = '::1/128'
