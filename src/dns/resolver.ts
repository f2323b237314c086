// One query in, one reply out (or nothing): the table first, then the upstream, as Istio's LocalDNSServer
// does. Transport-neutral, so UDP and TCP share it and tests can call it directly. Bad input gets FORMERR
// or NOTIMP, or nothing when not even a header can be read; it never throws.
import type { Logger } from '../logger.js'
import type { DnsConfig } from './config.js'
import {
  clientUdpSize,
  formErr,
  questionSection,
  rcodeOf,
  reply,
  textName,
  truncateFor,
  tryDecode,
  type Answer,
  type DecodedPacket,
} from './message.js'
import type { DnsMetrics } from './metrics.js'
import { tableTtlSeconds, type NameTable, type TableHit } from './table.js'
import { Forwarder, label } from './upstream.js'

export type Transport = 'udp' | 'tcp'

export class Resolver {
  readonly table: NameTable
  readonly forwarder: Forwarder
  readonly #metrics: DnsMetrics
  readonly #log: Logger
  readonly #config: DnsConfig
  #inflight = 0
  /** queries forwarded at once (each holds a socket); more get SERVFAIL at once: the server sets it from the fd budget */
  forwardLimit: number

  constructor(config: DnsConfig, table: NameTable, metrics: DnsMetrics, log: Logger) {
    this.#config = config
    this.forwardLimit = config.maxInflight
    this.table = table
    this.#metrics = metrics
    this.#log = log
    this.forwarder = new Forwarder(config.upstreams, config.timeoutMs, {
      unmatched: () => metrics.unmatchedReplies.inc(),
      attempt: (_server, ok, ms) => metrics.upstreamAttempt(ok, ms),
    })
  }

  async resolve(raw: Buffer, transport: Transport, client: string): Promise<Buffer | undefined> {
    const query = raw.length <= this.#config.maxQueryBytes ? tryDecode(raw) : undefined
    if (!query || query.type !== 'query')
      return this.#malformed(raw, transport, client, query ? 'a response, not a query' : 'cannot be decoded')
    if ((query as { opcode?: string }).opcode !== 'QUERY') return this.#done(raw, query, reply(raw, 'NOTIMP'), transport, client, 'notimp')
    const questions = query.questions ?? []
    if (questions.length !== 1) return this.#malformed(raw, transport, client, `${questions.length} questions`)
    if (questionSection(raw).length === 0) return this.#malformed(raw, transport, client, 'a compression pointer in the question')
    this.#metrics.request()
    const q = questions[0]!
    // A name whose text form is another name (a dot inside a label, non-UTF-8 bytes) is none of the table's.
    const name = q.class === 'IN' ? textName(raw, q) : undefined
    const hit = name === undefined ? undefined : this.table.lookup(name)
    if (hit) {
      this.#metrics.answeredFromTable.inc()
      return this.#done(raw, query, reply(raw, 'NOERROR', answersFor(q.name, q.type, hit), true), transport, client, 'table')
    }
    return this.#forward(raw, query, transport, client)
  }

  async #forward(raw: Buffer, query: DecodedPacket, transport: Transport, client: string): Promise<Buffer> {
    this.#metrics.forwarded.inc()
    if (this.#inflight >= this.forwardLimit) {
      this.#metrics.forwardOverflow.inc()
      this.#metrics.servfail.inc()
      return this.#done(raw, query, reply(raw, 'SERVFAIL'), transport, client, 'overloaded')
    }
    this.#inflight++
    try {
      const r = await this.forwarder.forward(raw, query)
      const rcode = rcodeOf(r.response)
      if (rcode === 3) this.#metrics.nxdomain.inc()
      if (rcode === 2) this.#metrics.servfail.inc()
      return this.#done(raw, query, r.response, transport, client, 'upstream', {
        upstream: `${r.protocol}:${label(r.server)}`,
        upstreamLocalPort: r.localPort,
      })
    } catch (err) {
      this.#metrics.servfail.inc()
      return this.#done(raw, query, reply(raw, 'SERVFAIL'), transport, client, 'servfail', { err: (err as Error).message })
    } finally {
      this.#inflight--
    }
  }

  #malformed(raw: Buffer, transport: Transport, client: string, why: string): Buffer | undefined {
    this.#metrics.malformed.inc()
    const out = formErr(raw)
    this.#log.debug({ proto: transport, client, bytes: raw.length, why, answered: out ? 'FORMERR' : 'dropped' }, 'dns malformed query')
    return out
  }

  #done(
    raw: Buffer,
    query: DecodedPacket,
    response: Buffer,
    transport: Transport,
    client: string,
    source: string,
    extra: object = {},
  ): Buffer {
    const out = transport === 'udp' ? truncateFor(raw, response, clientUdpSize(query)) : response
    const q = query.questions?.[0]
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug(
        {
          proto: transport,
          client,
          id: query.id,
          name: q?.name,
          type: q?.type,
          source,
          rcode: rcodeOf(out),
          truncated: out !== response,
          ...extra,
        },
        'dns query',
      )
    }
    return out
  }
}

/** The table's records for one question: a CNAME first when the query carried a search suffix. */
export function answersFor(qname: string, qtype: string, hit: TableHit): Answer[] {
  const answers: Answer[] = []
  let owner = qname
  if (hit.cnameFrom) {
    answers.push({ name: qname, type: 'CNAME', class: 'IN', ttl: tableTtlSeconds, data: hit.host.canonical })
    owner = hit.host.canonical
  }
  const addresses = qtype === 'A' ? hit.host.a : qtype === 'AAAA' ? hit.host.aaaa : []
  for (const data of addresses) answers.push({ name: owner, type: qtype as 'A' | 'AAAA', class: 'IN', ttl: tableTtlSeconds, data })
  return answers
}
