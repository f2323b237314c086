// istio-cni's ambient rules as one `nft -f` transaction (cni/pkg/nftables/nftables.go): the in-pod rules and
// the node's probe SNAT. Pure. Same decisions as build-iptables.ts, in nft's words: one `inet` table per
// iptables table, each IPv6 rule right after its IPv4 twin. Goldens: test/fixtures/istio-cni/nftables/.
import type { InpodConfig } from './config.js'
import type { InpodNote } from './build-iptables.js'
import {
  DNS_CAPTURE_PORT,
  INPOD_MARK,
  INPOD_MASK,
  INPOD_TPROXY_MARK,
  INPOD_TPROXY_MASK,
  PROBE_SET,
  ZTUNNEL_INBOUND_PLAINTEXT_PORT,
  ZTUNNEL_INBOUND_PORT,
  ZTUNNEL_OUTBOUND_PORT,
  capturesDNS,
  hex,
} from './config.js'

export const NAT = 'istio-ambient-nat'
export const MANGLE = 'istio-ambient-mangle'
export const RAW = 'istio-ambient-raw'
const PRERT = 'istio-prerouting'
const OUTPUT = 'istio-output'

export interface InpodNftRule {
  table: string
  chain: string
  /** everything after `add rule inet TABLE CHAIN` */
  body: string
  note: InpodNote
}

export class InpodNftRules {
  readonly rules: InpodNftRule[] = []
  constructor(readonly ipv6: boolean) {}

  add(note: InpodNote, table: string, chain: string, match: string, action: string): void {
    // Jumps carry no counter in Istio's rules; everything else counts before acting.
    const body = action.startsWith('jump ') && match === '' ? action : `${match ? `${match} ` : ''}counter ${action}`
    this.rules.push({ table, chain, body, note })
  }

  addV6(note: InpodNote, table: string, chain: string, match: string, action: string): void {
    if (this.ipv6) this.add(note, table, chain, match, action)
  }
}

const ztunnelMark = hex(INPOD_MARK)
const mask = hex(INPOD_MASK)
const connMark = hex(INPOD_TPROXY_MARK)

export function buildInpodNft(c: InpodConfig): InpodNftRules {
  const r = new InpodNftRules(c.ipv6)
  const dns = capturesDNS(c)

  r.add('jump', MANGLE, 'prerouting', '', `jump ${PRERT}`)
  r.add('jump', MANGLE, 'output', '', `jump ${OUTPUT}`)
  r.add('jump', NAT, 'output', '', `jump ${OUTPUT}`)
  if (dns) {
    r.add('jump', RAW, 'prerouting', '', `jump ${PRERT}`)
    r.add('jump', RAW, 'output', '', `jump ${OUTPUT}`)
  }
  r.add('jump', NAT, 'prerouting', '', `jump ${PRERT}`)

  for (const nic of c.virtualInterfaces) {
    r.add('virt-nic-redirect', NAT, PRERT, `iifname ${nic} meta l4proto tcp`, `redirect to :${ZTUNNEL_OUTBOUND_PORT}`)
    r.add('virt-nic-return', NAT, PRERT, `iifname ${nic} meta l4proto tcp`, 'return')
  }

  // The mark keeps the bits outside the mask: ct mark & ~mask | connmark. Istio's text has two spaces
  // after the `|`; nft reads it the same, and the goldens keep it.
  const keep = hex(~INPOD_TPROXY_MASK >>> 0)
  r.add('connmark-save', MANGLE, PRERT, `meta mark & ${mask} == ${ztunnelMark}`, `ct mark set ct mark & ${keep} |  ${connMark}`)

  const probe4 = c.hostProbeSnatIPv4
  const probe6 = c.hostProbeSnatIPv6
  if (!c.ingress) {
    r.add('probe-in', NAT, PRERT, `meta l4proto tcp ip saddr ${probe4}`, 'accept')
    r.addV6('probe-in', NAT, PRERT, `meta l4proto tcp ip6 saddr ${probe6}`, 'accept')
  }
  r.add('probe-out', NAT, OUTPUT, `meta l4proto tcp ip daddr ${probe4}`, 'accept')
  r.addV6('probe-out', NAT, OUTPUT, `meta l4proto tcp ip6 daddr ${probe6}`, 'accept')

  const notZtunnel = `mark and ${mask} != ${ztunnelMark}`
  if (!c.ingress) {
    const inbound = `redirect to :${ZTUNNEL_INBOUND_PLAINTEXT_PORT}`
    const tunnel = `tcp dport != ${ZTUNNEL_INBOUND_PORT}`
    // Istio's IPv4 variant has two spaces before `!=` (and the IPv6 one not); kept, as in the goldens.
    r.add('inbound-redirect', NAT, PRERT, `ip daddr != 127.0.0.1/32 ${tunnel} mark and ${mask}  != ${ztunnelMark}`, inbound)
    r.addV6('inbound-redirect', NAT, PRERT, `ip6 daddr != ::1/128 ${tunnel} ${notZtunnel}`, inbound)
  }

  r.add('connmark-restore', MANGLE, OUTPUT, `ct mark and ${hex(INPOD_TPROXY_MASK)} == ${connMark}`, 'meta mark set ct mark')

  if (dns) {
    const to = `redirect to :${DNS_CAPTURE_PORT}`
    r.add('dns-udp', NAT, OUTPUT, `oifname != lo ${notZtunnel} udp dport 53`, to)
    r.add('dns-tcp', NAT, OUTPUT, `ip daddr != 127.0.0.1/32 tcp dport 53 ${notZtunnel}`, to)
    r.addV6('dns-tcp', NAT, OUTPUT, `ip6 daddr != ::1/128 tcp dport 53 ${notZtunnel}`, to)
    r.add('dns-zone-upstream', RAW, OUTPUT, `udp dport 53 meta mark and ${mask} == ${ztunnelMark}`, 'ct zone set 1')
    r.add('dns-zone-reply', RAW, PRERT, `udp sport 53 meta mark and ${mask} != ${ztunnelMark}`, 'ct zone set 1')
  }

  r.add('marked-accept', NAT, OUTPUT, `meta l4proto tcp mark and ${hex(INPOD_TPROXY_MASK)} == ${connMark}`, 'accept')
  r.add('lo-accept', NAT, OUTPUT, 'oifname lo ip daddr != 127.0.0.1/32', 'accept')
  r.addV6('lo-accept', NAT, OUTPUT, 'oifname lo ip6 daddr != ::1/128', 'accept')
  const outbound = `redirect to :${ZTUNNEL_OUTBOUND_PORT}`
  r.add('outbound-redirect', NAT, OUTPUT, `meta l4proto tcp ip daddr != 127.0.0.1/32 ${notZtunnel}`, outbound)
  r.addV6('outbound-redirect', NAT, OUTPUT, `meta l4proto tcp ip6 daddr != ::1/128 ${notZtunnel}`, outbound)
  return r
}

/**
 * The node's side. nft has no --socket-exists, so Istio matches kubelet by its uid instead. The sets
 * @istio-inpod-probes-v4/-v6 are not created here: istio-cni fills them in the same table as pods come.
 */
export function buildHostNft(c: InpodConfig, kubeletUid: number): InpodNftRules {
  const r = new InpodNftRules(c.ipv6)
  const uid = `meta l4proto tcp skuid ${kubeletUid}`
  r.add('probe-snat', NAT, 'postrouting', `${uid} ip daddr @${PROBE_SET}-v4`, `snat to ${c.hostProbeSnatIPv4}`)
  r.addV6('probe-snat', NAT, 'postrouting', `${uid} ip6 daddr @${PROBE_SET}-v6`, `snat to ${c.hostProbeSnatIPv6}`)
  return r
}

const base = (type: string, hook: string, priority: number) => `{ type ${type} hook ${hook} priority ${priority} ; }`

/** Tables in the order written; a chain is declared only when it holds a rule or a rule jumps to it. */
const layout: Array<[string, Array<[string, string?]>]> = [
  [
    NAT,
    [
      ['prerouting', base('nat', 'prerouting', -100)],
      ['output', base('nat', 'output', -100)],
      ['postrouting', base('nat', 'postrouting', 100)],
      [PRERT],
      [OUTPUT],
    ],
  ],
  [MANGLE, [['prerouting', base('filter', 'prerouting', -150)], ['output', base('route', 'output', -150)], [PRERT], [OUTPUT]]],
  [RAW, [['prerouting', base('filter', 'prerouting', -300)], ['output', base('filter', 'output', -300)], [PRERT], [OUTPUT]]],
]

/** Each table is added and flushed, so applying the script again replaces the rules instead of doubling them. */
export function renderInpodNft(rules: readonly InpodNftRule[]): string {
  const out: string[] = []
  for (const [table, chains] of layout) {
    const own = rules.filter((r) => r.table === table)
    const used = chains.filter(([name]) => own.some((r) => r.chain === name || r.body === `jump ${name}`))
    if (used.length === 0) continue
    out.push(`add table inet ${table}`, `flush table inet ${table}`)
    for (const [name, spec] of used) out.push(`add chain inet ${table} ${name}${spec ? ` ${spec}` : ''}`)
    for (const r of own) out.push(`add rule inet ${table} ${r.chain} ${r.body}`)
  }
  return out.length > 0 ? `${out.join('\n')}\n` : ''
}
