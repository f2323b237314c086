// The few DNS message operations the proxy needs, through dns-packet: decode a query safely, match a reply to
// its query, and build the replies the proxy writes itself. One thing never goes through dns-packet's text
// form: the question a reply carries. Names are bytes (RFC 2181 11): dns-packet decodes a label through UTF-8
// and joins labels with dots, so octets over 0x7f and a dot inside a label would come back as another name,
// and resolvers drop a reply whose question differs from theirs. Replies echo the query's question bytes.
import dnsPacket from 'dns-packet'
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet'

export type { Answer, DecodedPacket, Packet, Question }
export const { encode, decode, RECURSION_DESIRED, RECURSION_AVAILABLE, AUTHORITATIVE_ANSWER, TRUNCATED_RESPONSE } = dnsPacket

/** dns-packet's codecs for one name and one question, which its type declarations leave out. */
const codecs = dnsPacket as unknown as {
  name: { encode(name: string): Buffer }
  question: { decode: ((buf: Buffer, offset: number) => Question) & { bytes: number } }
}

/** The opcode bits of a message's header (QUERY, NOTIFY, UPDATE...): a reply carries its query's. */
const opcodeMask = 0x7800

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

/**
 * A message's one question as the bytes it came in; empty when it has not exactly one, it cannot be read, or
 * its name holds a compression pointer: only the header precedes it, so a pointer points into the header,
 * which a reply changes (echoed, it would become another name or none).
 */
export function questionSection(raw: Buffer): Buffer {
  if (raw.length < 12 || raw.readUInt16BE(4) !== 1) return Buffer.alloc(0)
  try {
    codecs.question.decode(raw, 12)
  } catch {
    return Buffer.alloc(0)
  }
  const end = 12 + codecs.question.decode.bytes
  for (let i = 12; i < end && raw[i] !== 0; i += raw[i]! + 1) if (raw[i]! & 0xc0) return Buffer.alloc(0)
  return raw.subarray(12, end)
}

/**
 * The question's name as text for a table lookup, or undefined when the text is not the same name: a label
 * with a dot in it, bytes that are not UTF-8, a compression pointer. No table name can be such a name.
 */
export function textName(raw: Buffer, q: Question): string | undefined {
  const section = questionSection(raw)
  const bytes = section.subarray(0, section.length - 4)
  return bytes.length > 0 && codecs.name.encode(q.name).equals(bytes) ? q.name : undefined
}

/** The same single question, byte for byte but for ASCII case (RFC 5452's matching: 0x20 stays possible). */
export function sameQuestion(a: Buffer, b: Buffer): boolean {
  if (a.length === 0 || a.length !== b.length) return false
  const lower = (c: number) => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c)
  for (let i = 0; i < a.length; i++) if (lower(a[i]!) !== lower(b[i]!)) return false
  return true
}

/** The client's UDP size: its EDNS0 payload size when it sent an OPT record, else 512. */
export function clientUdpSize(query: DecodedPacket): number {
  const opt = query.additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined
  return Math.max(classicUdpSize, Math.min(opt?.udpPayloadSize ?? classicUdpSize, maxMessageSize))
}

/**
 * A reply to the query `raw` with the given rcode and answers: its ID, opcode and question bytes, RD copied,
 * RA set (we recurse via the upstream). Answers' owner names are the text that textName() vouched for.
 */
export function reply(raw: Buffer, rcode: Rcode, answers: Answer[] = [], authoritative = false): Buffer {
  const queryFlags = raw.readUInt16BE(2)
  let flags = (queryFlags & opcodeMask) | RECURSION_AVAILABLE | rcodeNumber[rcode]
  if (queryFlags & RECURSION_DESIRED) flags |= RECURSION_DESIRED
  if (authoritative) flags |= AUTHORITATIVE_ANSWER
  return withQuestion(encode({ type: 'response', id: raw.readUInt16BE(0), flags, questions: [], answers }), raw)
}

/**
 * `encoded` (built without a question) with the query's question bytes after its header. dns-packet never
 * compresses names, so nothing in `encoded` points at an offset the insertion moves.
 */
function withQuestion(encoded: Buffer, raw: Buffer): Buffer {
  const question = questionSection(raw)
  const out = Buffer.concat([encoded.subarray(0, 12), question, encoded.subarray(12)])
  out.writeUInt16BE(question.length ? 1 : 0, 4)
  return out
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

/** The UDP reply cut to the client's size: header and the query's question with TC set, so it retries over TCP. */
export function truncateFor(raw: Buffer, response: Buffer, size: number): Buffer {
  if (response.length <= size) return response
  const flags = (response.readUInt16BE(2) & 0xffff & ~0x8000) | TRUNCATED_RESPONSE
  return withQuestion(encode({ type: 'response', id: raw.readUInt16BE(0), flags, questions: [] }), raw)
}

export function rcodeOf(response: Buffer): number {
  return response.length >= 4 ? response.readUInt16BE(2) & 0xf : -1
}
