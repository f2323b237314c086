// --explain: one short comment above each rule on why it exists and which packets it catches. The
// comments are `#` lines, which iptables-restore and `nft -f` both skip, so explained output still loads.
import { DNS_CAPTURE_PORT, OUTBOUND_MARK } from './config.js'
import type { RuleConfig } from './config.js'

type Text = (c: RuleConfig) => string

const notes = {
  'exclude-nic-in': () => 'Packets arriving on an excluded interface (--istio-exclude-interfaces) skip every Istio rule.',
  'exclude-nic-out': () => 'Packets leaving through an excluded interface skip every Istio rule.',
  'virt-nic-return': () => 'Traffic from a VM behind a kube-virt interface is not inbound for this pod; do not capture it as such.',
  'virt-nic-capture': () => "Traffic from a kube-virt interface is the VM's outbound traffic: send it to Envoy's outbound listener.",
  'drop-invalid-jump': () => 'Conntrack INVALID packets (e.g. out of window after a redirect) would make the kernel send RST; catch them.',
  'drop-invalid': () => 'Drop them silently instead, so the connection survives.',
  'tunnel-port': (c) => `Inbound TCP to the HBONE tunnel port ${c.inboundTunnelPort} is already mTLS for Envoy itself: never redirect it.`,
  'redirect-outbound': (c) =>
    `The outbound capture: rewrite the destination to Envoy's outbound listener ${c.proxyPort}; Envoy reads the original with SO_ORIGINAL_DST.`,
  'redirect-inbound': (c) => `The inbound capture: rewrite the destination to Envoy's inbound listener ${c.inboundCapturePort}.`,
  'inbound-jump': () => 'Every TCP packet arriving at the pod goes through ISTIO_INBOUND first.',
  'inbound-port-exclude': () =>
    'Inbound TCP to an excluded port (--istio-local-exclude-ports: ssh, health, metrics) goes straight to the app.',
  'inbound-all': () => 'Every other inbound TCP connection goes to Envoy (-b *).',
  'inbound-port': () => 'Inbound TCP to this application port goes to Envoy (-b list).',
  'inbound-established': () =>
    'TPROXY: packets of a connection Envoy already owns are only marked, so policy routing hands them to its socket.',
  'inbound-tproxy': () => 'TPROXY: a new inbound connection is handed to Envoy with its addresses untouched.',
  'divert-mark': (c) => `Mark the packet ${c.inboundTProxyMark}: the policy rule routes that mark to the local table.`,
  'divert-accept': () => 'Marked: accept it, the mangle table has nothing more to do.',
  tproxy: (c) => `TPROXY to Envoy's port ${c.inboundCapturePort} with mark ${c.inboundTProxyMark}; traffic to loopback is left alone.`,
  'output-jump': () => 'Every packet a local process sends goes through ISTIO_OUTPUT (TCP and, for DNS, UDP).',
  'outbound-port-exclude': () => 'Outbound traffic to an excluded port (--istio-local-outbound-ports-exclude) leaves uncaptured.',
  passthrough: () =>
    "Envoy's inbound passthrough connects to the app from 127.0.0.6 (::6): let it reach the app instead of looping back into Envoy.",
  'self-via-vip': () =>
    'The proxy calling a non-loopback local address over lo (app calling its own service VIP, after Envoy chose this pod): ' +
    'send it to the inbound listener, so the server side of the mesh runs too (the lo / ISTIO_IN_REDIRECT trick).',
  'app-to-self': () => 'An app (not the proxy) talking over lo to this pod, by pod IP: app to app, do not capture.',
  'proxy-owner': (c) =>
    `Anything the proxy itself sends (uid/gid ${c.proxyUID}/${c.proxyGID}) leaves as is; this is what stops Envoy's own upstream connections looping back into Envoy.`,
  'group-exclude': () => 'Processes of this group are never captured (ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE).',
  'group-include': () => 'Only the listed groups are captured (ISTIO_OUTBOUND_OWNER_GROUPS): everything else returns.',
  'dns-raw-jump': () => 'DNS over UDP needs conntrack zones; the raw table is the only place to set them.',
  'dns-nat-jump': () => 'Outbound DNS goes through ISTIO_OUTPUT_DNS.',
  'dns-redirect': () =>
    `DNS from the app to a captured server goes to the istio-agent DNS proxy on ${DNS_CAPTURE_PORT}; the proxy's own queries returned above.`,
  'dns-proxy-return': () => "The proxy's own DNS queries go upstream unchanged (no loop through the DNS proxy).",
  'dns-zone-upstream': () =>
    'The DNS proxy querying upstream resolvers: conntrack zone 1, apart from the app-side flows with the same 5-tuple.',
  'dns-zone-reply': () => `The DNS proxy answering apps from port ${DNS_CAPTURE_PORT}: conntrack zone 2.`,
  'dns-raw-inbound-jump': () => 'DNS answers coming back need their zone set before conntrack looks them up.',
  'dns-zone-client': () => 'An app querying a DNS server: zone 2, the zone of the redirected flow to the DNS proxy.',
  'dns-zone-response': () => 'Answers from DNS servers: zone 1, the zone of the proxy-to-upstream flows.',
  localhost: (c) => `Traffic to ${c.hostIPv4LoopbackCidr} / ::1 is container-to-container or Envoy-aware: never capture it.`,
  'cidr-exclude': () => 'Outbound to an excluded range (--istio-service-exclude-cidr) leaves uncaptured.',
  'outbound-port-include': () => 'Outbound TCP to this port goes to Envoy whatever the destination (--istio-outbound-ports).',
  'cidr-include-all': () => 'All remaining outbound TCP goes to Envoy (-i *).',
  'cidr-include': () => 'Outbound TCP to this range goes to Envoy (--istio-service-cidr).',
  'cidr-include-rest': () => 'Any other destination is outside the captured ranges: let it go.',
  'tproxy-save-mark': (c) => `TPROXY: remember mark ${c.inboundTProxyMark} on the connection (conntrack mark).`,
  'tproxy-marked-return': (c) => `TPROXY: packets already carrying mark ${c.inboundTProxyMark} are Envoy's replies; leave them.`,
  'tproxy-outbound-mark': () =>
    `TPROXY: the proxy calling a local non-loopback address over lo gets mark ${OUTBOUND_MARK}, so ISTIO_INBOUND will capture it.`,
  'tproxy-restore-mark': (c) =>
    `TPROXY: replies of a diverted connection get mark ${c.inboundTProxyMark} back, so they route to Envoy's socket.`,
  'tproxy-loop': (c) => `TPROXY: already-diverted packets (mark ${c.inboundTProxyMark}) must not be diverted again.`,
  'tproxy-passthrough': () => "TPROXY: Envoy's passthrough connections from 127.0.0.6 (::6) to the app are not captured.",
  'tproxy-app-to-self': () =>
    `TPROXY: over lo only packets marked ${OUTBOUND_MARK} (proxy to app by pod IP) are captured; app to app is not.`,
} satisfies Record<string, Text>

export type NoteId = keyof typeof notes

export function explainNote(note: NoteId, c: RuleConfig): string {
  return notes[note](c)
}

/** For the renderers: the comment lines of a rule. */
export function annotator(c: RuleConfig): (rule: { note: NoteId }) => string[] {
  return (rule) => [explainNote(rule.note, c)]
}

/** Drops the comment lines --explain adds; what remains is the plain plan. */
export function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n')
}
