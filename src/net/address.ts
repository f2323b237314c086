// The one place addresses become text and text becomes addresses. Everything else (the proxy's logs and
// access log, the admin API, the lab's app, the trace) holds an Endpoint and formats it here, as Envoy
// prints addresses: host:port, IPv6 in brackets. Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d;
// every address is normalised to its plain form first, so one peer has one spelling wherever it shows.
import { isIP } from 'node:net'
import { InvalidAddressError } from '../errors.js'

export interface Endpoint {
  address: string
  port: number
  family: 4 | 6
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4; any other address as it is. */
export function plainAddress(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** 6 for an IPv6 address that is not IPv4-mapped, else 4 (the family whose socket options apply). */
export function addressFamily(address: string | undefined): 4 | 6 {
  return address !== undefined && isIP(plainAddress(address)) === 6 ? 6 : 4
}

/** A socket's address and port (either may be missing on a closed socket) as an Endpoint. */
export function endpoint(address: string | undefined, port: number | undefined): Endpoint | undefined {
  if (!address || port === undefined) return undefined
  const plain = plainAddress(address)
  return { address: plain, port, family: isIP(plain) === 6 ? 6 : 4 }
}

/** host:port, with IPv6 in brackets, as Envoy prints addresses; '-' for none, as Envoy's access log does. */
export function formatEndpoint(e: Endpoint | undefined | null): string {
  if (!e) return '-'
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`
}

/** Envoy's form of a host and port the caller already holds apart (a bind address and a listener port). */
export function formatHostPort(host: string, port: number): string {
  return formatEndpoint(endpointOf(host, port))
}

/** An address and port from values known to be valid (a socket's, the lab's own): no parse, no throw. */
export function endpointOf(host: string, port: number): Endpoint {
  const plain = plainAddress(host)
  return { address: plain, port, family: isIP(plain) === 6 ? 6 : 4 }
}

/**
 * `a.b.c.d:port` or `[v6]:port` -> an Endpoint, IPv4-mapped forms made plain. Strict: an IPv6 address must
 * be in brackets (2001:2::20:9080 could be either), the port a decimal 0-65535; anything else throws
 * InvalidAddressError naming what is wrong.
 */
export function parseEndpoint(text: string): Endpoint {
  const fail = (reason: string) => new InvalidAddressError(text, reason)
  let host: string
  let portText: string
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close === -1) throw fail("'[' without ']'")
    if (text[close + 1] !== ':') throw fail("no ':port' after ']'")
    host = text.slice(1, close)
    portText = text.slice(close + 2)
    if (isIP(host) !== 6) throw fail(`'${host}' in brackets is not an IPv6 address`)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon === -1) throw fail("no ':port'")
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (isIP(host) === 6) throw fail('an IPv6 address needs brackets: [ADDRESS]:PORT')
    if (isIP(host) !== 4) throw fail(`'${host}' is not an IP address`)
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw fail(`'${portText}' is not a port (0-65535)`)
  return endpointOf(host, Number(portText))
}

/** As parseEndpoint, but '-' (Envoy's "none", e.g. no upstream) is null. */
export function parseOptionalEndpoint(text: string): Endpoint | null {
  return text === '-' ? null : parseEndpoint(text)
}

export function sameEndpoint(a: Endpoint | null | undefined, b: Endpoint | null | undefined): boolean {
  return !!a && !!b && a.address === b.address && a.port === b.port
}

/** A Map key for an address and port as a socket reports them (mapped and plain IPv4 the same key). */
export function endpointKey(address: string | undefined, port: number | undefined): string {
  return `${plainAddress(address ?? '')}|${port ?? 0}`
}
