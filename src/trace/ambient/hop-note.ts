// What a trace says of one ztunnel hop, from its access line: plain (part 1: the original destination by
// SO_ORIGINAL_DST, a new TCP connection to it) or HBONE (an outbound hop carries the connection to the peer's
// 15008 as an HTTP/2 CONNECT over mutual TLS; an inbound hop on 15008 takes its target from the CONNECT's
// :authority, since nothing redirected it there).
import { formatEndpoint as fmt, type Endpoint } from '../../net/address.js'
import type { ZtunnelLine } from './evidence.js'

export interface HopNoteInput {
  line: ZtunnelLine
  /** the pod whose namespace the hop's sockets are in */
  pod: string
  /** "ztunnel (pid N, running in NS, the node)" */
  who: string
  listener: Endpoint | undefined
  /** the connection the ztunnel opened for it, when the trace saw it; pooled: no SYN of its own (an earlier request opened it) */
  next: { client: Endpoint; server: Endpoint; pooled?: boolean } | undefined
}

/** Where the hop was headed: the HBONE target for an outbound HBONE hop (its dst.addr is the peer's 15008). */
export function hopTarget(line: ZtunnelLine): Endpoint {
  return line.hbone?.target ?? line.dst
}

export function hopNote({ line, pod, who, listener, next }: HopNoteInput): string {
  const accepted = `${who} accepted ${fmt(line.src)}${listener ? ` on ${fmt(listener)}` : ''} inside the namespace of ${pod} (${line.direction})`
  const h = line.hbone
  const fields =
    `its access line: direction=${line.direction} src.addr=${fmt(line.src)} dst.addr=${fmt(line.dst)}` +
    (h?.target ? ` dst.hbone_addr=${fmt(h.target)}` : '')
  const made = (c: { client: Endpoint; server: Endpoint }) =>
    `${fmt(c.client)} -> ${fmt(c.server)} from a socket it made inside the namespace of ${pod}, marked 0x539`
  if (line.direction === 'outbound' && h?.target) {
    const carried = next
      ? `; it carried it to the peer's 15008 as an HTTP/2 CONNECT to ${fmt(h.target)} over mutual TLS (it presented ` +
        `${h.srcIdentity ?? '?'}, the peer ${h.dstIdentity ?? '?'}) on ${made(next)}` +
        (next.pooled ? ', a pooled session an earlier request opened (no SYN of its own in this trace)' : '')
      : '; the trace did not see the connection it carried it on'
    return `${accepted}; original destination ${fmt(h.target)} (SO_ORIGINAL_DST), an HBONE workload in its table (${fields})${carried}`
  }
  const opened = next
    ? `; opened ${made(next)}` +
      (line.direction === 'inbound'
        ? ` and transparent: the caller's own address ${next.client.address}, so the app sees its real client`
        : '')
    : '; the trace did not see the connection it opened'
  if (line.direction === 'inbound' && h?.srcIdentity) {
    return (
      `${accepted}: an HBONE tunnel from ${h.srcIdentity}, over mutual TLS; the CONNECT's :authority named ${fmt(line.dst)} ` +
      `(no SO_ORIGINAL_DST: nothing redirected it to 15008; ${fields})${opened}`
    )
  }
  return `${accepted}; original destination ${fmt(line.dst)} (SO_ORIGINAL_DST; ${fields})${opened}`
}
