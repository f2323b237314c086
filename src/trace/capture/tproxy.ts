// What a trace says differently in a TPROXY lab: the mangle table diverts the SYN (no NAT), policy routing
// delivers the marked packets locally, the sidecar reads the destination from its own socket, and its
// connection to the app leaves from the client's address. Kept apart so the REDIRECT text stays as it is.
import { execIn } from '../../sys/netns.js'
import { formatEndpoint as fmt, sameEndpoint } from '../../net/address.js'
import type { Connection } from './steps.js'

export type TraceMode = 'REDIRECT' | 'TPROXY'

/** The TPROXY target's verdict line, explained: where the packet goes and why it is delivered locally. */
export function tproxyRuleNote(routing: string[] | undefined, family: string): string {
  const mine = (routing ?? []).filter((l) => l.startsWith(family === 'ip6' ? 'ip -6' : 'ip -4'))
  const route = mine.length ? ` (${mine.join('; ')})` : ''
  return (
    "TPROXY: no NAT; the SYN keeps its addresses, is marked 0x539 (1337) and assigned to the sidecar's " +
    `transparent listener on :15006; the policy rule for fwmark 0x539 looks up table 133, whose local default route delivers it here${route}`
  )
}

/** The accept note's "how the destination was found" part. */
export function destinationSource(mode: TraceMode | undefined): string {
  return mode === 'TPROXY' ? "the accepted socket's own local address: TPROXY does not NAT" : 'SO_ORIGINAL_DST'
}

/** The second answer's TPROXY sentence: whose address the sidecar's connection to the app carries. */
export function transparentSentence(connections: Connection[]): string {
  const toApp = connections.find((c) => c.role === 'inbound sidecar')
  if (!toApp) return ''
  // By its role, not its place in the list (the called pod's own outbound call follows it): the connection
  // that reached the app's address and port from the address the transparent socket reused: the caller's
  // sidecar, or the caller itself when it has none.
  const reaching = connections.filter(
    (c) => c !== toApp && c.client.address === toApp.client.address && sameEndpoint(c.server, toApp.server),
  )
  const caller = reaching.find((c) => c.role === 'outbound sidecar') ?? reaching.find((c) => c.role === 'app')
  if (!caller) return ''
  return (
    ` Here (TPROXY) the inbound sidecar's connection to the app carries the client's address: ${fmt(toApp.client)} -> ` +
    `${fmt(toApp.server)}, from ${caller.client.address} (the caller, ${fmt(caller.client)}) on a port the kernel chose, through a ` +
    'transparent socket marked 0x539, so the app sees its caller instead of 127.0.0.6.'
  )
}

/** `ip rule` lines for the TPROXY mark and table 133's routes, IPv4 then IPv6 (empty in a REDIRECT pod). */
export async function readTproxyRouting(ns: string): Promise<string[]> {
  const lines: string[] = []
  for (const family of ['-4', '-6']) {
    const rules = await execIn(ns, ['ip', family, 'rule', 'show'], { allowFailure: true })
    for (const l of rules.stdout.split('\n').filter((x) => x.includes('lookup 133')))
      lines.push(`ip ${family} rule ${l.replace(/^\d+:\s+/, '').trim()}`)
    const routes = await execIn(ns, ['ip', family, 'route', 'show', 'table', '133'], { allowFailure: true })
    for (const l of routes.stdout.split('\n').filter(Boolean)) lines.push(`ip ${family} route table 133: ${l.trim()}`)
  }
  return lines
}
