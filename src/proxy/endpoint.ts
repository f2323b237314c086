// Addresses as the proxy sees them. Dual-stack listeners report IPv4 peers as ::ffff:a.b.c.d; every
// address is normalised to its plain form before it is compared, logged or dialled.
import { isIP } from 'node:net'

export interface Endpoint {
  address: string
  port: number
  family: 4 | 6
}

export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

export function endpoint(address: string | undefined, port: number | undefined): Endpoint | undefined {
  if (!address || port === undefined) return undefined
  const plain = plainAddress(address)
  return { address: plain, port, family: isIP(plain) === 6 ? 6 : 4 }
}

/** host:port, with IPv6 in brackets, as Envoy prints addresses */
export function formatEndpoint(e: Endpoint | undefined): string {
  if (!e) return '-'
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`
}

export function endpointKey(address: string | undefined, port: number | undefined): string {
  return `${plainAddress(address ?? '')}|${port ?? 0}`
}
