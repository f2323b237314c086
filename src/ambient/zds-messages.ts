// ZDS's messages (ztunnel's proto/zds.proto, istio.workload.zds): what istio-cni's node agent and ztunnel say
// over the node agent's SOCK_SEQPACKET socket. We do not speak protobuf: each message is one packet of JSON
// whose keys are the proto's field names (snake_case, a oneof as its one set field), so a peer speaking real
// protobuf ZDS would not understand us; the flow is Istio's (hello, snapshot, one ack per request).
import type { FdMessage } from '../native/unix-fds.js'

/** proto: WorkloadInfo. */
export interface WorkloadInfo {
  name: string
  namespace: string
  service_account: string
}

/** proto: WorkloadRequest's oneof payload, node agent to ztunnel. An add carries the pod's netns fd. */
export type WorkloadRequest =
  | { add: { uid: string; workload_info: WorkloadInfo } }
  | { keep: { uid: string } }
  | { del: { uid: string } }
  | { snapshot_sent: Record<string, never> }

/** proto: WorkloadResponse, ztunnel to node agent: an ack, a nack when error is not empty. */
export interface WorkloadResponse {
  ack: { error: string }
}

/** proto: ZdsHello, ztunnel's first message; V1 is the only version. */
export interface ZdsHello {
  version: 'V1'
}

export const HELLO: ZdsHello = { version: 'V1' }

export function encode(message: WorkloadRequest | WorkloadResponse | ZdsHello): Buffer {
  return Buffer.from(JSON.stringify(message))
}

export function requestType(request: WorkloadRequest): string {
  return Object.keys(request)[0] ?? 'none'
}

function parseObject(data: Buffer): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch (err) {
    throw new Error(`message is not JSON (${(err as Error).message})`, { cause: err })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('message is not a JSON object')
  return value as Record<string, unknown>
}

function field(obj: unknown, key: string, what: string): string {
  const value = (obj as Record<string, unknown> | null)?.[key]
  if (typeof value !== 'string') throw new Error(`${what}.${key} must be a string`)
  return value
}

function uidOf(body: unknown, type: string): string {
  const uid = field(body, 'uid', type)
  if (uid === '') throw new Error(`${type}.uid is empty`)
  return uid
}

/** A request as ztunnel's side reads it; throws an Error saying what is wrong with it. */
export function parseRequest(data: Buffer): WorkloadRequest {
  const obj = parseObject(data)
  const keys = Object.keys(obj)
  if (keys.length !== 1) throw new Error(`a request has exactly one of add, keep, del, snapshot_sent (got: ${keys.join(', ') || 'none'})`)
  const type = keys[0] as string
  const body = obj[type]
  if (typeof body !== 'object' || body === null) throw new Error(`${type} must be an object`)
  switch (type) {
    case 'add': {
      const info = (body as Record<string, unknown>).workload_info
      if (typeof info !== 'object' || info === null) throw new Error('add.workload_info is missing')
      const w = 'add.workload_info'
      const workload = {
        name: field(info, 'name', w),
        namespace: field(info, 'namespace', w),
        service_account: field(info, 'service_account', w),
      }
      return { add: { uid: uidOf(body, type), workload_info: workload } }
    }
    case 'keep':
      return { keep: { uid: uidOf(body, type) } }
    case 'del':
      return { del: { uid: uidOf(body, type) } }
    case 'snapshot_sent':
      return { snapshot_sent: {} }
    default:
      throw new Error(`unknown message type '${type}'`)
  }
}

/** A response as the node agent's side reads it: the ack's error ('' for an ack). */
export function parseAck(message: FdMessage): string {
  const obj = parseObject(message.data)
  const ack = obj.ack
  if (typeof ack !== 'object' || ack === null) throw new Error(`not an ack: ${message.data.toString('utf8').slice(0, 200)}`)
  const error = (ack as Record<string, unknown>).error
  if (error !== undefined && typeof error !== 'string') throw new Error('ack.error must be a string')
  return error ?? ''
}

/** ztunnel's hello; throws for anything else. */
export function parseHello(message: FdMessage): ZdsHello {
  const obj = parseObject(message.data)
  if (obj.version !== 'V1') throw new Error(`hello with version ${JSON.stringify(obj.version)}, wants "V1"`)
  return HELLO
}
