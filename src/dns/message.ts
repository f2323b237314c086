// The few DNS message operations the proxy needs, all through dns-packet (never by hand): decode a query
// safely, match a reply to its query, and build the replies the proxy writes itself.
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet'

export type { Answer, DecodedPacket, Packet, Question }
export const { encode, decode, RECURSION_DESIRED, RECURSION_AVAILABLE, AUTHORITATIVE_ANSWER, TRUNCATED_RESPONSE } = dnsPacket

/** The largest UDP reply a client takes without EDNS (RFC 1035), and the most we ever accept from one. */
export const classicUdpSize = 512
export const maxMessageSize = 65535

export type Rcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED'
const rcodeNumber: Record<Rcode, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 }

export function tryDecode(buf: Buffer): DecodedPacket | undefined {
  try {
    return decode(buf)
  } catch {
    return undefined
  }
}

/** Same ID and the same single question (name case-insensitively, type, class): RFC 5452's matching. */
export function sameQuestion(a: Question | undefined, b: Question | undefined): boolean {
  return !!a && !!b && a.type === b.type && a.class === b.class && a.name.toLowerCase() === b.name.toLowerCase()
}

/** The client's UDP size: its EDNS0 payload size when it sent an OPT record, else 512. */
export function clientUdpSize(query: DecodedPacket): number {
  const opt = query.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined
  return Math.max(classicUdpSize, Math.min(opt?.udpPayloadSize ?? classicUdpSize, maxMessageSize))
}

/** A reply to `query` with the given rcode and answers; RD copied, RA set (we recurse via the upstream). */
export function reply(query: DecodedPacket, rcode: Rcode, answers: Answer[] = [], authoritative = false): Buffer {
  let flags = RECURSION_AVAILABLE | rcodeNumber[rcode]
  if (query.flag_rd) flags |= RECURSION_DESIRED
  if (authoritative) flags |= AUTHORITATIVE_ANSWER
  return encode({ type: 'response', id: query.id, flags, questions: query.questions, answers })
}

/**
 * FORMERR for a message whose header could be read but nothing after it: the ID and opcode go back, no
 * question (we could not read one). Built from a header-only Packet so dns-packet does the encoding.
 */
export function formErr(raw: Buffer): Buffer | undefined {
  if (raw.length < 12) return undefined
  const id = raw.readUInt16BE(0)
  const flags = raw.readUInt16BE(2)
  if (flags & 0x8000) return undefined // a response: never answer one (that is how reflection loops start)
  const rd = flags & RECURSION_DESIRED
  return encode({ type: 'response', id, flags: (flags & 0x7800) | rd | rcodeNumber.FORMERR, questions: [] })
}

/** The UDP reply cut to the client's size: header and question with TC set, so it retries over TCP. */
export function truncateFor(query: DecodedPacket, response: Buffer, size: number): Buffer {
  if (response.length <= size) return response
  const flags = (response.readUInt16BE(2) & 0xffff & ~0x8000) | TRUNCATED_RESPONSE
  return encode({ type: 'response', id: query.id, flags, questions: query.questions })
}

export function rcodeOf(response: Buffer): number {
  return response.length >= 4 ? response.readUInt16BE(2) & 0xf : -1
}
