// The iptables rules of current istio-iptables (tools/istio-iptables/pkg/capture/run.go), rebuilt as a pure
// function. The order of the calls is the order of the output, so it follows Istio's step by step; the
// conformance goldens in test/fixtures/istio-iptables/ pin it down.
import { DNS_CAPTURE_PORT, INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, LOOPBACK_V6, OUTBOUND_MARK } from './config.js'
import { splitList as split } from './config.js'
import type { RuleConfig } from './config.js'
import { IptRuleSet, VERSIONED } from './ipt-rules.js'
import { captureDNS, ownerGroupFilter, proxyOwners } from './shared.js'
import { separateV4V6 } from './ranges.js'

export const IN = 'ISTIO_INBOUND'
export const OUT = 'ISTIO_OUTPUT'
export const REDIR = 'ISTIO_REDIRECT'
export const IN_REDIR = 'ISTIO_IN_REDIRECT'
const DIVERT = 'ISTIO_DIVERT'
const TPROXY = 'ISTIO_TPROXY'
const OUT_DNS = 'ISTIO_OUTPUT_DNS'
const DROP = 'ISTIO_DROP'

export function buildIptablesRules(c: RuleConfig): IptRuleSet {
  const r = new IptRuleSet(c.enableIPv6)
  const exclude = separateV4V6(c.outboundIPRangesExclude)
  const include = separateV4V6(c.outboundIPRangesInclude)
  const dns = captureDNS(c)
  const tproxy = c.inboundInterceptionMode === 'TPROXY'
  const lo = c.hostIPv4LoopbackCidr
  const port = (n: number) => String(n)

  for (const nic of split(c.excludeInterfaces)) {
    r.append('exclude-nic-in', 'nat', 'PREROUTING', '-i', nic, '-j', 'RETURN')
    r.append('exclude-nic-out', 'nat', 'OUTPUT', '-o', nic, '-j', 'RETURN')
  }
  if (tproxy) {
    for (const nic of split(c.excludeInterfaces)) {
      r.append('exclude-nic-in', 'mangle', 'PREROUTING', '-i', nic, '-j', 'RETURN')
      r.append('exclude-nic-out', 'mangle', 'OUTPUT', '-o', nic, '-j', 'RETURN')
    }
  }
  for (const nic of split(c.rerouteVirtualInterfaces)) {
    r.insert('virt-nic-return', 'nat', 'PREROUTING', 1, '-i', nic, '-j', 'RETURN')
  }
  if (c.dropInvalid) {
    r.append('drop-invalid-jump', 'mangle', 'PREROUTING', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', DROP)
    r.append('drop-invalid', 'mangle', DROP, '-j', 'DROP')
  }
  redirectChains(r, c)

  inbound(r, c, tproxy)

  r.append('output-jump', 'nat', 'OUTPUT', '-j', OUT)
  for (const p of split(c.outboundPortsExclude)) {
    r.append('outbound-port-exclude', 'nat', OUT, '-p', 'tcp', '--dport', p, '-j', 'RETURN')
    r.append('outbound-port-exclude', 'nat', OUT, '-p', 'udp', '--dport', p, '-j', 'RETURN')
  }
  r.appendVersioned('passthrough', INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, 'nat', OUT, '-o', 'lo', '-s', VERSIONED, '-j', 'RETURN')

  const loopbackIncluded = include.v4.hasLoopback || include.v6.hasLoopback
  for (const { kind, id } of proxyOwners(c)) {
    const owner = `--${kind}-owner`
    // Only the UID rule skips port 53 as well: Istio's GID rule never got the DNS exception.
    const ports =
      dns && kind === 'uid'
        ? ['-m', 'multiport', '!', '--dports', `53,${c.inboundTunnelPort}`]
        : ['!', '--dport', port(c.inboundTunnelPort)]
    r.appendVersioned(
      'self-via-vip',
      lo,
      LOOPBACK_V6,
      'nat',
      OUT,
      '-o',
      'lo',
      '!',
      '-d',
      VERSIONED,
      '-p',
      'tcp',
      ...ports,
      '-m',
      'owner',
      owner,
      id,
      '-j',
      IN_REDIR,
    )
    if (!loopbackIncluded) {
      const notDns = dns ? ['-p', 'tcp', '!', '--dport', '53'] : []
      r.append('app-to-self', 'nat', OUT, '-o', 'lo', ...notDns, '-m', 'owner', '!', owner, id, '-j', 'RETURN')
    }
    r.append('proxy-owner', 'nat', OUT, '-m', 'owner', owner, id, '-j', 'RETURN')
  }

  const groups = ownerGroupFilter(c)
  if (groups.except) {
    for (const g of groups.values) r.append('group-exclude', 'nat', OUT, '-m', 'owner', '--gid-owner', g, '-j', 'RETURN')
  } else {
    const noneOf = groups.values.flatMap((g) => ['-m', 'owner', '!', '--gid-owner', g])
    r.append('group-include', 'nat', OUT, ...noneOf, '-j', 'RETURN')
  }

  if (dns) dnsRules(r, c)

  r.appendVersioned('localhost', lo, LOOPBACK_V6, 'nat', OUT, '-d', VERSIONED, '-j', 'RETURN')
  for (const cidr of exclude.v4.cidrs) r.appendV4('cidr-exclude', 'nat', OUT, '-d', cidr, '-j', 'RETURN')
  for (const cidr of exclude.v6.cidrs) r.appendV6('cidr-exclude', 'nat', OUT, '-d', cidr, '-j', 'RETURN')
  for (const p of split(c.outboundPortsInclude)) {
    r.append('outbound-port-include', 'nat', OUT, '-p', 'tcp', '--dport', p, '-j', REDIR)
  }
  outboundInclude(r, c, 'v4')
  outboundInclude(r, c, 'v6')

  if (tproxy) tproxyMarks(r, c)
  return r
}

/** The tunnel-port exception and the two REDIRECT chains, the same in every layout. */
export function redirectChains(r: IptRuleSet, c: RuleConfig): void {
  r.append('tunnel-port', 'nat', IN, '-p', 'tcp', '--dport', String(c.inboundTunnelPort), '-j', 'RETURN')
  r.append('redirect-outbound', 'nat', REDIR, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(c.proxyPort))
  r.append('redirect-inbound', 'nat', IN_REDIR, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(c.inboundCapturePort))
}

export function inbound(r: IptRuleSet, c: RuleConfig, tproxy: boolean): void {
  if (c.inboundPortsInclude === '') return
  const mark = String(c.inboundTProxyMark)
  const table = tproxy ? 'mangle' : 'nat'
  if (tproxy) {
    r.append('divert-mark', 'mangle', DIVERT, '-j', 'MARK', '--set-mark', mark)
    r.append('divert-accept', 'mangle', DIVERT, '-j', 'ACCEPT')
    r.appendVersioned(
      'tproxy',
      c.hostIPv4LoopbackCidr,
      LOOPBACK_V6,
      'mangle',
      TPROXY,
      '!',
      '-d',
      VERSIONED,
      '-p',
      'tcp',
      '-j',
      'TPROXY',
      '--tproxy-mark',
      `${mark}/0xffffffff`,
      '--on-port',
      String(c.inboundCapturePort),
    )
  }
  r.append('inbound-jump', table, 'PREROUTING', '-p', 'tcp', '-j', IN)
  const established = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED']
  if (c.inboundPortsInclude.trim() === '*') {
    for (const p of split(c.inboundPortsExclude)) {
      r.append('inbound-port-exclude', table, IN, '-p', 'tcp', '--dport', p, '-j', 'RETURN')
    }
    if (tproxy) {
      r.append('inbound-established', 'mangle', IN, '-p', 'tcp', ...established, '-j', DIVERT)
      r.append('inbound-tproxy', 'mangle', IN, '-p', 'tcp', '-j', TPROXY)
    } else {
      r.append('inbound-all', 'nat', IN, '-p', 'tcp', '-j', IN_REDIR)
    }
    return
  }
  for (const p of split(c.inboundPortsInclude)) {
    if (tproxy) {
      r.append('inbound-established', 'mangle', IN, '-p', 'tcp', '--dport', p, ...established, '-j', DIVERT)
      r.append('inbound-tproxy', 'mangle', IN, '-p', 'tcp', '--dport', p, '-j', TPROXY)
    } else {
      r.append('inbound-port', 'nat', IN, '-p', 'tcp', '--dport', p, '-j', IN_REDIR)
    }
  }
}

function dnsRules(r: IptRuleSet, c: RuleConfig): void {
  const { captureAllDNS: all, dnsServersV4: v4, dnsServersV6: v6 } = c
  const to = String(DNS_CAPTURE_PORT)
  r.append('dns-raw-jump', 'raw', 'OUTPUT', '-j', OUT_DNS)
  if (all || v4.length > 0) r.appendV4('dns-nat-jump', 'nat', OUT, '-j', OUT_DNS)
  if (all || v6.length > 0) r.appendV6('dns-nat-jump', 'nat', OUT, '-j', OUT_DNS)
  // Istio spells the TCP target `--to-ports` and the UDP one `--to-port`; both are accepted.
  for (const [proto, opt] of [
    ['tcp', '--to-ports'],
    ['udp', '--to-port'],
  ] as const) {
    if (all) {
      r.append('dns-redirect', 'nat', OUT_DNS, '-p', proto, '--dport', '53', '-j', 'REDIRECT', opt, to)
      continue
    }
    for (const s of v4) r.appendV4('dns-redirect', 'nat', OUT_DNS, '-p', proto, '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', opt, to)
    for (const s of v6)
      r.appendV6('dns-redirect', 'nat', OUT_DNS, '-p', proto, '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', opt, to)
  }
  for (const { kind, id } of proxyOwners(c)) {
    const opt = `--${kind}-owner`
    r.append('dns-zone-upstream', 'raw', OUT_DNS, '-p', 'udp', '--dport', '53', '-m', 'owner', opt, id, '-j', 'CT', '--zone', '1')
    r.append('dns-zone-reply', 'raw', OUT_DNS, '-p', 'udp', '--sport', to, '-m', 'owner', opt, id, '-j', 'CT', '--zone', '2')
  }
  if (all) {
    r.append('dns-raw-inbound-jump', 'raw', 'PREROUTING', '-j', IN)
    r.append('dns-zone-client', 'raw', OUT_DNS, '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2')
    r.append('dns-zone-response', 'raw', IN, '-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1')
    return
  }
  if (v4.length > 0) r.appendV4('dns-raw-inbound-jump', 'raw', 'PREROUTING', '-j', IN)
  for (const s of v4) {
    r.appendV4('dns-zone-client', 'raw', OUT_DNS, '-p', 'udp', '--dport', '53', '-d', `${s}/32`, '-j', 'CT', '--zone', '2')
    r.appendV4('dns-zone-response', 'raw', IN, '-p', 'udp', '--sport', '53', '-s', `${s}/32`, '-j', 'CT', '--zone', '1')
  }
  if (v6.length > 0) r.appendV6('dns-raw-inbound-jump', 'raw', 'PREROUTING', '-j', IN)
  for (const s of v6) {
    r.appendV6('dns-zone-client', 'raw', OUT_DNS, '-p', 'udp', '--dport', '53', '-d', `${s}/128`, '-j', 'CT', '--zone', '2')
    r.appendV6('dns-zone-response', 'raw', IN, '-p', 'udp', '--sport', '53', '-s', `${s}/128`, '-j', 'CT', '--zone', '1')
  }
}

/** `returnRest`: the old layout also ended a CIDR list with an explicit RETURN for everything else. */
export function outboundInclude(r: IptRuleSet, c: RuleConfig, family: 'v4' | 'v6', returnRest = false): void {
  const range = separateV4V6(c.outboundIPRangesInclude)[family]
  const append = family === 'v4' ? r.appendV4.bind(r) : r.appendV6.bind(r)
  const insert = family === 'v4' ? r.insertV4.bind(r) : r.insertV6.bind(r)
  const nics = split(c.rerouteVirtualInterfaces)
  if (range.wildcard) {
    append('cidr-include-all', 'nat', OUT, '-j', REDIR)
    for (const nic of nics) insert('virt-nic-capture', 'nat', 'PREROUTING', 1, '-i', nic, '-j', REDIR)
    return
  }
  for (const cidr of range.cidrs) {
    for (const nic of nics) insert('virt-nic-capture', 'nat', 'PREROUTING', 1, '-i', nic, '-d', cidr, '-j', REDIR)
    append('cidr-include', 'nat', OUT, '-d', cidr, '-j', REDIR)
  }
  if (returnRest && range.cidrs.length > 0) append('cidr-include-rest', 'nat', OUT, '-j', 'RETURN')
}

function tproxyMarks(r: IptRuleSet, c: RuleConfig): void {
  const mark = String(c.inboundTProxyMark)
  const out = String(OUTBOUND_MARK)
  r.append('tproxy-save-mark', 'mangle', 'PREROUTING', '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'CONNMARK', '--save-mark')
  r.append('tproxy-marked-return', 'mangle', 'OUTPUT', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', mark, '-j', 'RETURN')
  for (const { kind, id } of proxyOwners(c)) {
    r.appendVersioned(
      'tproxy-outbound-mark',
      c.hostIPv4LoopbackCidr,
      LOOPBACK_V6,
      'mangle',
      'OUTPUT',
      '!',
      '-d',
      VERSIONED,
      '-p',
      'tcp',
      '-o',
      'lo',
      '-m',
      'owner',
      `--${kind}-owner`,
      id,
      '-j',
      'MARK',
      '--set-mark',
      out,
    )
  }
  r.append('tproxy-restore-mark', 'mangle', 'OUTPUT', '-p', 'tcp', '-m', 'connmark', '--mark', mark, '-j', 'CONNMARK', '--restore-mark')
  r.insert('tproxy-loop', 'mangle', IN, 1, '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN')
  r.insertV4('tproxy-passthrough', 'mangle', IN, 2, '-p', 'tcp', '-s', INBOUND_PASSTHROUGH_V4, '-i', 'lo', '-j', 'RETURN')
  r.insertV6('tproxy-passthrough', 'mangle', IN, 2, '-p', 'tcp', '-s', INBOUND_PASSTHROUGH_V6, '-i', 'lo', '-j', 'RETURN')
  r.insert('tproxy-app-to-self', 'mangle', IN, 3, '-p', 'tcp', '-i', 'lo', '-m', 'mark', '!', '--mark', out, '-j', 'RETURN')
}
