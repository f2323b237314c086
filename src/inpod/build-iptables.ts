// istio-cni's ambient rules as iptables-restore input: the in-pod rules (cni/pkg/iptables/iptables.go,
// AppendInpodRules) and the node's probe SNAT (AppendHostRules). Pure. The order in which rules are added
// is the order Istio writes them; renderRestore groups them by table, so the goldens in
// test/fixtures/istio-cni/iptables/ pin both down.
import { IptRuleSet, VERSIONED } from '../iptables/ipt-rules.js'
import type { InpodConfig } from './config.js'
import {
  DNS_CAPTURE_PORT,
  INPOD_MARK,
  INPOD_MASK,
  INPOD_RESTORE_MASK,
  INPOD_TPROXY_MARK,
  INPOD_TPROXY_MASK,
  PROBE_SET,
  ZTUNNEL_INBOUND_PLAINTEXT_PORT,
  ZTUNNEL_INBOUND_PORT,
  ZTUNNEL_OUTBOUND_PORT,
  capturesDNS,
  hex,
} from './config.js'

export const PRERT = 'ISTIO_PRERT'
export const OUTPUT = 'ISTIO_OUTPUT'
export const POSTRT = 'ISTIO_POSTRT'

/** What each rule is for; tests find rules by it. */
export type InpodNote =
  | 'jump'
  | 'virt-nic-redirect'
  | 'virt-nic-return'
  | 'connmark-save'
  | 'probe-in'
  | 'probe-out'
  | 'inbound-redirect'
  | 'connmark-restore'
  | 'dns-udp'
  | 'dns-tcp'
  | 'dns-zone-upstream'
  | 'dns-zone-reply'
  | 'marked-accept'
  | 'lo-accept'
  | 'outbound-redirect'
  | 'probe-snat'

const LOOPBACK_V4 = '127.0.0.1/32'
const LOOPBACK_V6 = '::1/128'
const ztunnelMark = `${hex(INPOD_MARK)}/${hex(INPOD_MASK)}`
const connMark = `${hex(INPOD_TPROXY_MARK)}/${hex(INPOD_TPROXY_MASK)}`
const notZtunnel = ['-m', 'mark', '!', '--mark', ztunnelMark]

export function buildInpodIptables(c: InpodConfig): IptRuleSet<InpodNote> {
  const r = new IptRuleSet<InpodNote>(c.ipv6)
  const dns = capturesDNS(c)

  // Jumps into our own chains, so cleanup is deleting these jumps and the chains.
  r.append('jump', 'mangle', 'PREROUTING', '-j', PRERT)
  r.append('jump', 'mangle', 'OUTPUT', '-j', OUTPUT)
  r.append('jump', 'nat', 'OUTPUT', '-j', OUTPUT)
  if (dns) {
    r.append('jump', 'raw', 'PREROUTING', '-j', PRERT)
    r.append('jump', 'raw', 'OUTPUT', '-j', OUTPUT)
  }
  r.append('jump', 'nat', 'PREROUTING', '-j', PRERT)

  // A virtual interface's inbound is really the VM's outbound: straight to ztunnel's outbound port, TCP only.
  for (const nic of c.virtualInterfaces) {
    r.append('virt-nic-redirect', 'nat', PRERT, '-i', nic, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(ZTUNNEL_OUTBOUND_PORT))
    r.append('virt-nic-return', 'nat', PRERT, '-i', nic, '-p', 'tcp', '-j', 'RETURN')
  }

  r.append('connmark-save', 'mangle', PRERT, '-m', 'mark', '--mark', ztunnelMark, '-j', 'CONNMARK', '--set-xmark', connMark)

  const [probe4, probe6] = [c.hostProbeSnatIPv4, c.hostProbeSnatIPv6]
  if (!c.ingress) {
    r.appendVersioned('probe-in', probe4, probe6, 'nat', PRERT, '-s', VERSIONED, '-p', 'tcp', '-m', 'tcp', '-j', 'ACCEPT')
  }
  r.appendVersioned('probe-out', probe4, probe6, 'nat', OUTPUT, '-d', VERSIONED, '-p', 'tcp', '-m', 'tcp', '-j', 'ACCEPT')

  if (!c.ingress) {
    r.appendVersioned(
      'inbound-redirect',
      LOOPBACK_V4,
      LOOPBACK_V6,
      'nat',
      PRERT,
      ...['!', '-d', VERSIONED, '-p', 'tcp', '!', '--dport', String(ZTUNNEL_INBOUND_PORT), ...notZtunnel],
      ...['-j', 'REDIRECT', '--to-ports', String(ZTUNNEL_INBOUND_PLAINTEXT_PORT)],
    )
  }

  const restore = hex(INPOD_RESTORE_MASK)
  r.append(
    'connmark-restore',
    'mangle',
    OUTPUT,
    '-m',
    'connmark',
    '--mark',
    connMark,
    '-j',
    'CONNMARK',
    '--restore-mark',
    '--nfmask',
    restore,
    '--ctmask',
    restore,
  )

  if (dns) {
    const to = String(DNS_CAPTURE_PORT)
    // Istio writes `--to-port` (singular) here and `--to-ports` elsewhere; iptables takes both.
    r.append(
      'dns-udp',
      'nat',
      OUTPUT,
      '!',
      '-o',
      'lo',
      '-p',
      'udp',
      ...notZtunnel,
      '-m',
      'udp',
      '--dport',
      '53',
      '-j',
      'REDIRECT',
      '--to-port',
      to,
    )
    r.appendVersioned(
      'dns-tcp',
      LOOPBACK_V4,
      LOOPBACK_V6,
      'nat',
      OUTPUT,
      ...['!', '-d', VERSIONED, '-p', 'tcp', '--dport', '53', ...notZtunnel, '-j', 'REDIRECT', '--to-ports', to],
    )
    // ztunnel's own DNS queries and their answers get a conntrack zone of their own, so their tuples cannot
    // collide with the app's redirected queries (istio/istio#33469).
    r.append(
      'dns-zone-upstream',
      'raw',
      OUTPUT,
      '-p',
      'udp',
      '-m',
      'mark',
      '--mark',
      ztunnelMark,
      '-m',
      'udp',
      '--dport',
      '53',
      '-j',
      'CT',
      '--zone',
      '1',
    )
    r.append('dns-zone-reply', 'raw', PRERT, '-p', 'udp', ...notZtunnel, '-m', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1')
  }

  r.append('marked-accept', 'nat', OUTPUT, '-p', 'tcp', '-m', 'mark', '--mark', connMark, '-j', 'ACCEPT')
  r.appendVersioned('lo-accept', LOOPBACK_V4, LOOPBACK_V6, 'nat', OUTPUT, '!', '-d', VERSIONED, '-o', 'lo', '-j', 'ACCEPT')
  r.appendVersioned(
    'outbound-redirect',
    LOOPBACK_V4,
    LOOPBACK_V6,
    'nat',
    OUTPUT,
    ...['!', '-d', VERSIONED, '-p', 'tcp', ...notZtunnel, '-j', 'REDIRECT', '--to-ports', String(ZTUNNEL_OUTBOUND_PORT)],
  )
  return r
}

/**
 * The node's side: a probe from a local socket (kubelet) to a pod in the probe set leaves with the fixed
 * SNAT source, which the pod's probe-in rule lets past ztunnel. Forwarded traffic (kube-proxy) has no
 * local socket and keeps its source, so it is still captured.
 */
export function buildHostIptables(c: InpodConfig): IptRuleSet<InpodNote> {
  const r = new IptRuleSet<InpodNote>(c.ipv6)
  r.insert('jump', 'nat', 'POSTROUTING', 1, '-j', POSTRT)
  const snat = (set: string, to: string) =>
    ['-m', 'owner', '--socket-exists', '-p', 'tcp', '-m', 'set', '--match-set', set, 'dst', '-j', 'SNAT', '--to-source', to] as const
  r.appendV4('probe-snat', 'nat', POSTRT, ...snat(`${PROBE_SET}-v4`, c.hostProbeSnatIPv4))
  r.appendV6('probe-snat', 'nat', POSTRT, ...snat(`${PROBE_SET}-v6`, c.hostProbeSnatIPv6))
  return r
}
