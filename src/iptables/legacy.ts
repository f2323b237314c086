// --compat legacy: the layout of Istio about 1.10 (the seed listing 000_4b6062bbf940b178.txt): `-p tcp`
// jumps from PREROUTING and OUTPUT, DNS rules directly in nat OUTPUT and raw PREROUTING / OUTPUT, outbound
// port exclusions first in ISTIO_OUTPUT. REDIRECT mode only; that Istio had TPROXY too, but the seed
// does not show it and it is not emulated here.
import { DNS_CAPTURE_PORT, INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, LOOPBACK_V6 } from './config.js'
import { splitList as split } from './config.js'
import type { RuleConfig } from './config.js'
import { InvalidFlagError } from '../errors.js'
import { IN_REDIR, OUT, REDIR, inbound, outboundInclude, redirectChains } from './build-iptables.js'
import { IptRuleSet, VERSIONED } from './ipt-rules.js'
import { separateV4V6 } from './ranges.js'
import { proxyOwners } from './shared.js'

/** Settings the layout of the seed does not show: refused by name rather than silently left out. */
function refuseUnemulated(c: RuleConfig): void {
  const unemulated: string[] = []
  if (c.excludeInterfaces) unemulated.push(`-c/--istio-exclude-interfaces '${c.excludeInterfaces}'`)
  if (c.dropInvalid) unemulated.push('--drop-invalid (INVALID_DROP)')
  if (c.ownerGroupsInclude !== '*') unemulated.push(`ISTIO_OUTBOUND_OWNER_GROUPS='${c.ownerGroupsInclude}'`)
  if (c.ownerGroupsExclude) unemulated.push(`ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE='${c.ownerGroupsExclude}'`)
  if (unemulated.length) {
    throw new InvalidFlagError(
      `--compat legacy emulates a published rule listing's layout (Istio about 1.10), which has none of: ${unemulated.join(', ')}; drop them or drop --compat legacy`,
    )
  }
}

export function buildLegacyRules(c: RuleConfig): IptRuleSet {
  if (c.inboundInterceptionMode === 'TPROXY') {
    throw new InvalidFlagError('--compat legacy emulates REDIRECT mode only; drop --istio-inbound-interception-mode TPROXY')
  }
  refuseUnemulated(c)
  const r = new IptRuleSet(c.enableIPv6)
  const lo = c.hostIPv4LoopbackCidr
  // Old Istio sent DNS to the agent whenever asked, with or without known servers.
  const dns = c.redirectDNS
  const ranges = separateV4V6(c.outboundIPRangesInclude)

  for (const nic of split(c.rerouteVirtualInterfaces)) r.insert('virt-nic-return', 'nat', 'PREROUTING', 1, '-i', nic, '-j', 'RETURN')
  redirectChains(r, c)

  inbound(r, c, false)

  r.append('output-jump', 'nat', 'OUTPUT', '-p', 'tcp', '-j', OUT)
  if (dns) natOutputDNS(r, c)
  for (const p of split(c.outboundPortsExclude)) r.append('outbound-port-exclude', 'nat', OUT, '-p', 'tcp', '--dport', p, '-j', 'RETURN')
  r.appendVersioned('passthrough', INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, 'nat', OUT, '-o', 'lo', '-s', VERSIONED, '-j', 'RETURN')

  const loopbackIncluded = ranges.v4.hasLoopback || ranges.v6.hasLoopback
  for (const { kind, id } of proxyOwners(c)) {
    const owner = `--${kind}-owner`
    // As in that Istio, only the UID rule learned to leave port 53 alone.
    const notDnsIn = dns && kind === 'uid' ? ['-p', 'tcp', '!', '--dport', '53'] : []
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
      ...notDnsIn,
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
  if (dns) {
    const to = String(DNS_CAPTURE_PORT)
    if (c.captureAllDNS) r.append('dns-redirect', 'nat', OUT, '-p', 'tcp', '--dport', '53', '-j', 'REDIRECT', '--to-ports', to)
    else {
      for (const s of c.dnsServersV4)
        r.appendV4('dns-redirect', 'nat', OUT, '-p', 'tcp', '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', '--to-ports', to)
      for (const s of c.dnsServersV6)
        r.appendV6('dns-redirect', 'nat', OUT, '-p', 'tcp', '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', '--to-ports', to)
    }
  }
  r.appendVersioned('localhost', lo, LOOPBACK_V6, 'nat', OUT, '-d', VERSIONED, '-j', 'RETURN')
  const exclude = separateV4V6(c.outboundIPRangesExclude)
  for (const cidr of exclude.v4.cidrs) r.appendV4('cidr-exclude', 'nat', OUT, '-d', cidr, '-j', 'RETURN')
  for (const cidr of exclude.v6.cidrs) r.appendV6('cidr-exclude', 'nat', OUT, '-d', cidr, '-j', 'RETURN')
  for (const p of split(c.outboundPortsInclude)) r.append('outbound-port-include', 'nat', OUT, '-p', 'tcp', '--dport', p, '-j', REDIR)
  outboundInclude(r, c, 'v4', true)
  outboundInclude(r, c, 'v6', true)
  if (dns) rawDNS(r, c)
  return r
}

function natOutputDNS(r: IptRuleSet, c: RuleConfig): void {
  for (const { kind, id } of proxyOwners(c)) {
    r.append('dns-proxy-return', 'nat', 'OUTPUT', '-p', 'udp', '--dport', '53', '-m', 'owner', `--${kind}-owner`, id, '-j', 'RETURN')
  }
  const to = String(DNS_CAPTURE_PORT)
  if (c.captureAllDNS) {
    r.append('dns-redirect', 'nat', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', 'REDIRECT', '--to-ports', to)
    return
  }
  for (const s of c.dnsServersV4)
    r.appendV4('dns-redirect', 'nat', 'OUTPUT', '-p', 'udp', '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', '--to-ports', to)
  for (const s of c.dnsServersV6)
    r.appendV6('dns-redirect', 'nat', 'OUTPUT', '-p', 'udp', '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', '--to-ports', to)
}

function rawDNS(r: IptRuleSet, c: RuleConfig): void {
  const zone = (n: string) => ['-j', 'CT', '--zone', n]
  if (c.captureAllDNS) r.append('dns-zone-response', 'raw', 'PREROUTING', '-p', 'udp', '--sport', '53', ...zone('1'))
  for (const s of c.captureAllDNS ? [] : c.dnsServersV4)
    r.appendV4('dns-zone-response', 'raw', 'PREROUTING', '-p', 'udp', '--sport', '53', '-s', `${s}/32`, ...zone('1'))
  for (const s of c.captureAllDNS ? [] : c.dnsServersV6)
    r.appendV6('dns-zone-response', 'raw', 'PREROUTING', '-p', 'udp', '--sport', '53', '-s', `${s}/128`, ...zone('1'))
  for (const { kind, id } of proxyOwners(c)) {
    const owner = ['-m', 'owner', `--${kind}-owner`, id]
    r.append('dns-zone-upstream', 'raw', 'OUTPUT', '-p', 'udp', '--dport', '53', ...owner, ...zone('1'))
    r.append('dns-zone-reply', 'raw', 'OUTPUT', '-p', 'udp', '--sport', String(DNS_CAPTURE_PORT), ...owner, ...zone('2'))
  }
  if (c.captureAllDNS) r.append('dns-zone-client', 'raw', 'OUTPUT', '-p', 'udp', '--dport', '53', ...zone('2'))
  for (const s of c.captureAllDNS ? [] : c.dnsServersV4)
    r.appendV4('dns-zone-client', 'raw', 'OUTPUT', '-p', 'udp', '--dport', '53', '-d', `${s}/32`, ...zone('2'))
  for (const s of c.captureAllDNS ? [] : c.dnsServersV6)
    r.appendV6('dns-zone-client', 'raw', 'OUTPUT', '-p', 'udp', '--dport', '53', '-d', `${s}/128`, ...zone('2'))
}
