// The nftables rules of istio-iptables --native-nftables (tools/istio-nftables/pkg/capture/run.go), as a
// pure function. One `inet` table per iptables table carries both families, so IPv4 and IPv6 variants of a
// rule sit side by side. The goldens in test/fixtures/istio-nftables/ pin the order down.
import { DNS_CAPTURE_PORT, INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, LOOPBACK_V6, OUTBOUND_MARK } from './config.js'
import { splitList as split } from './config.js'
import type { RuleConfig } from './config.js'
import { NftRuleSet } from './nft-rules.js'
import { separateV4V6 } from './ranges.js'
import { captureDNS, ownerGroupFilter, proxyOwners } from './shared.js'

const NAT = 'istio-proxy-nat'
const MANGLE = 'istio-proxy-mangle'
const RAW = 'istio-proxy-raw'
const IN = 'istio-inbound'
const OUT = 'istio-output'
const REDIR = 'istio-redirect'
const IN_REDIR = 'istio-in-redirect'
const OUT_DNS = 'istio-output-dns'

export function buildNftRules(c: RuleConfig): NftRuleSet {
  const r = new NftRuleSet(c.enableIPv6)
  const exclude = separateV4V6(c.outboundIPRangesExclude)
  const dns = captureDNS(c)
  const tproxy = c.inboundInterceptionMode === 'TPROXY'
  const lo = c.hostIPv4LoopbackCidr
  const tunnel = c.inboundTunnelPort

  for (const table of tproxy ? [NAT, MANGLE] : [NAT]) {
    for (const nic of split(c.excludeInterfaces)) {
      r.add('exclude-nic-in', table, 'prerouting', `iifname ${nic}`, 'return')
      r.add('exclude-nic-out', table, 'output', `oifname ${nic}`, 'return')
    }
  }
  for (const nic of split(c.rerouteVirtualInterfaces)) r.insert('virt-nic-return', NAT, 'prerouting', 0, `iifname ${nic}`, 'return')
  if (c.dropInvalid) {
    r.add('drop-invalid-jump', MANGLE, 'prerouting', 'meta l4proto tcp ct state invalid', 'jump istio-drop')
    r.add('drop-invalid', MANGLE, 'istio-drop', '', 'drop')
  }
  r.add('tunnel-port', NAT, IN, `meta l4proto tcp tcp dport ${tunnel}`, 'return')
  r.add('redirect-outbound', NAT, REDIR, 'meta l4proto tcp', `redirect to :${c.proxyPort}`)
  r.add('redirect-inbound', NAT, IN_REDIR, 'meta l4proto tcp', `redirect to :${c.inboundCapturePort}`)

  inbound(r, c, tproxy)

  r.add('output-jump', NAT, 'output', '', `jump ${OUT}`)
  for (const p of split(c.outboundPortsExclude)) {
    r.add('outbound-port-exclude', NAT, OUT, `tcp dport ${p}`, 'return')
    r.add('outbound-port-exclude', NAT, OUT, `udp dport ${p}`, 'return')
  }
  r.add('passthrough', NAT, OUT, `oifname lo ip saddr ${INBOUND_PASSTHROUGH_V4}`, 'return')
  r.addV6('passthrough', NAT, OUT, `oifname lo ip6 saddr ${INBOUND_PASSTHROUGH_V6}`, 'return')

  const include = separateV4V6(c.outboundIPRangesInclude)
  const loopbackIncluded = include.v4.hasLoopback || include.v6.hasLoopback
  for (const { kind, id } of proxyOwners(c)) {
    const sk = `sk${kind}`
    const ports = dns && kind === 'uid' ? `{ 53, ${tunnel} }` : String(tunnel)
    r.add('self-via-vip', NAT, OUT, `oifname lo meta l4proto tcp ip daddr != ${lo} tcp dport != ${ports} ${sk} ${id}`, `jump ${IN_REDIR}`)
    r.addV6(
      'self-via-vip',
      NAT,
      OUT,
      `oifname lo meta l4proto tcp ip6 daddr != ${LOOPBACK_V6} tcp dport != ${ports} ${sk} ${id}`,
      `jump ${IN_REDIR}`,
    )
    if (!loopbackIncluded) {
      const notDns = dns ? ' meta l4proto tcp tcp dport != 53' : ''
      r.add('app-to-self', NAT, OUT, `oifname lo${notDns} ${sk} != ${id}`, 'return')
    }
    r.add('proxy-owner', NAT, OUT, `${sk} ${id}`, 'return')
  }

  const groups = ownerGroupFilter(c)
  if (groups.except) {
    for (const g of groups.values) r.add('group-exclude', NAT, OUT, `skgid ${g}`, 'return')
  } else {
    r.add('group-include', NAT, OUT, groups.values.map((g) => `skgid != ${g}`).join(' '), 'return')
  }

  if (dns) dnsRules(r, c)

  r.add('localhost', NAT, OUT, `ip daddr ${lo}`, 'return')
  r.addV6('localhost', NAT, OUT, `ip6 daddr ${LOOPBACK_V6}`, 'return')
  for (const cidr of exclude.v4.cidrs) r.add('cidr-exclude', NAT, OUT, `ip daddr ${cidr}`, 'return')
  for (const cidr of exclude.v6.cidrs) r.addV6('cidr-exclude', NAT, OUT, `ip6 daddr ${cidr}`, 'return')
  for (const p of split(c.outboundPortsInclude)) r.add('outbound-port-include', NAT, OUT, `tcp dport ${p}`, `jump ${REDIR}`)
  outboundInclude(r, c)

  if (tproxy) tproxyMarks(r, c)
  return r
}

function inbound(r: NftRuleSet, c: RuleConfig, tproxy: boolean): void {
  if (c.inboundPortsInclude === '') return
  const mark = c.inboundTProxyMark
  const table = tproxy ? MANGLE : NAT
  if (tproxy) {
    r.add('divert-mark', MANGLE, 'istio-divert', '', `meta mark set ${mark}`)
    r.add('divert-accept', MANGLE, 'istio-divert', '', 'accept')
    const to = `:${c.inboundCapturePort} meta mark set ${mark}`
    r.add('tproxy', MANGLE, 'istio-tproxy', `meta l4proto tcp ip daddr != ${c.hostIPv4LoopbackCidr} tproxy ip to ${to}`, 'accept')
    r.addV6('tproxy', MANGLE, 'istio-tproxy', `meta l4proto tcp ip6 daddr != ${LOOPBACK_V6} tproxy ip6 to ${to}`, 'accept')
  }
  r.add('inbound-jump', table, 'prerouting', 'meta l4proto tcp', `jump ${IN}`)
  const established = 'meta l4proto tcp ct state related,established'
  if (c.inboundPortsInclude.trim() === '*') {
    for (const p of split(c.inboundPortsExclude)) r.add('inbound-port-exclude', table, IN, `meta l4proto tcp tcp dport ${p}`, 'return')
    if (tproxy) {
      r.add('inbound-established', MANGLE, IN, established, 'jump istio-divert')
      r.add('inbound-tproxy', MANGLE, IN, 'meta l4proto tcp', 'jump istio-tproxy')
    } else {
      r.add('inbound-all', NAT, IN, 'meta l4proto tcp', `jump ${IN_REDIR}`)
    }
    return
  }
  for (const p of split(c.inboundPortsInclude)) {
    if (tproxy) {
      r.add('inbound-established', MANGLE, IN, `${established} tcp dport ${p}`, 'jump istio-divert')
      r.add('inbound-tproxy', MANGLE, IN, `meta l4proto tcp tcp dport ${p}`, 'jump istio-tproxy')
    } else {
      r.add('inbound-port', NAT, IN, `meta l4proto tcp tcp dport ${p}`, `jump ${IN_REDIR}`)
    }
  }
}

function dnsRules(r: NftRuleSet, c: RuleConfig): void {
  const { captureAllDNS: all, dnsServersV4: v4, dnsServersV6: v6 } = c
  const to = `redirect to :${DNS_CAPTURE_PORT}`
  r.add('dns-raw-jump', RAW, 'output', '', `jump ${OUT_DNS}`)
  if (all || v4.length > 0 || v6.length > 0) r.add('dns-nat-jump', NAT, OUT, '', `jump ${OUT_DNS}`)
  if (all) {
    r.add('dns-redirect', NAT, OUT_DNS, 'meta l4proto tcp tcp dport 53', to)
    r.add('dns-redirect', NAT, OUT_DNS, 'udp dport 53', to)
  } else {
    for (const proto of ['tcp', 'udp']) {
      for (const s of v4) r.add('dns-redirect', NAT, OUT_DNS, `ip daddr ${s}/32 ${proto} dport 53`, to)
      for (const s of v6) r.addV6('dns-redirect', NAT, OUT_DNS, `ip6 daddr ${s}/128 ${proto} dport 53`, to)
    }
  }
  for (const { kind, id } of proxyOwners(c)) {
    r.add('dns-zone-upstream', RAW, OUT_DNS, `udp dport 53 meta sk${kind} ${id}`, 'ct zone set 1')
    r.add('dns-zone-reply', RAW, OUT_DNS, `udp sport ${DNS_CAPTURE_PORT} meta sk${kind} ${id}`, 'ct zone set 2')
  }
  if (all) {
    r.add('dns-raw-inbound-jump', RAW, 'prerouting', '', `jump ${IN}`)
    r.add('dns-zone-client', RAW, OUT_DNS, 'udp dport 53', 'ct zone set 2')
    r.add('dns-zone-response', RAW, IN, 'udp sport 53', 'ct zone set 1')
    return
  }
  if (v4.length > 0 || v6.length > 0) r.add('dns-raw-inbound-jump', RAW, 'prerouting', '', `jump ${IN}`)
  for (const s of v4) {
    r.add('dns-zone-client', RAW, OUT_DNS, `udp dport 53 ip daddr ${s}/32`, 'ct zone set 2')
    r.add('dns-zone-response', RAW, IN, `udp sport 53 ip saddr ${s}/32`, 'ct zone set 1')
  }
  for (const s of v6) {
    r.addV6('dns-zone-client', RAW, OUT_DNS, `udp dport 53 ip6 daddr ${s}/128`, 'ct zone set 2')
    r.addV6('dns-zone-response', RAW, IN, `udp sport 53 ip6 saddr ${s}/128`, 'ct zone set 1')
  }
}

function outboundInclude(r: NftRuleSet, c: RuleConfig): void {
  const { v4, v6 } = separateV4V6(c.outboundIPRangesInclude)
  const nics = split(c.rerouteVirtualInterfaces)
  if (v4.wildcard || v6.wildcard) {
    r.add('cidr-include-all', NAT, OUT, '', `jump ${REDIR}`)
    for (const nic of nics) r.insert('virt-nic-capture', NAT, 'prerouting', 0, `iifname ${nic}`, `jump ${REDIR}`)
    return
  }
  for (const cidr of v4.cidrs) {
    for (const nic of nics) r.insert('virt-nic-capture', NAT, 'prerouting', 0, `iifname ${nic} ip daddr ${cidr}`, `jump ${REDIR}`)
    r.add('cidr-include', NAT, OUT, `ip daddr ${cidr}`, `jump ${REDIR}`)
  }
  for (const cidr of v6.cidrs) {
    for (const nic of nics) r.insertV6('virt-nic-capture', NAT, 'prerouting', 0, `iifname ${nic} ip6 daddr ${cidr}`, `jump ${REDIR}`)
    r.addV6('cidr-include', NAT, OUT, `ip6 daddr ${cidr}`, `jump ${REDIR}`)
  }
}

function tproxyMarks(r: NftRuleSet, c: RuleConfig): void {
  const mark = c.inboundTProxyMark
  r.add('tproxy-save-mark', MANGLE, 'prerouting', `meta l4proto tcp mark ${mark}`, 'ct mark set mark')
  r.add('tproxy-marked-return', MANGLE, 'output', `oifname lo meta l4proto tcp mark ${mark}`, 'return')
  for (const { kind, id } of proxyOwners(c)) {
    const set = `meta mark set ${OUTBOUND_MARK}`
    r.add(
      'tproxy-outbound-mark',
      MANGLE,
      'output',
      `oifname lo meta l4proto tcp ip daddr != ${c.hostIPv4LoopbackCidr} sk${kind} ${id}`,
      set,
    )
    r.addV6('tproxy-outbound-mark', MANGLE, 'output', `oifname lo meta l4proto tcp ip6 daddr != ${LOOPBACK_V6} sk${kind} ${id}`, set)
  }
  r.add('tproxy-restore-mark', MANGLE, 'output', `meta l4proto tcp ct mark ${mark}`, 'meta mark set ct mark')
  r.insert('tproxy-loop', MANGLE, IN, 0, `meta l4proto tcp mark ${mark}`, 'return')
  r.insert('tproxy-passthrough', MANGLE, IN, 1, `iifname lo meta l4proto tcp ip saddr ${INBOUND_PASSTHROUGH_V4}`, 'return')
  r.insertV6('tproxy-passthrough', MANGLE, IN, 1, `iifname lo meta l4proto tcp ip6 saddr ${INBOUND_PASSTHROUGH_V6}`, 'return')
  r.insert('tproxy-app-to-self', MANGLE, IN, 2, `iifname lo meta l4proto tcp mark != ${OUTBOUND_MARK}`, 'return')
}
