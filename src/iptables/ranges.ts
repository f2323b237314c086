// Outbound CIDR lists hold IPv4 and IPv6 ranges mixed; each family's rules take only its own.
import { isIPv4, isIPv6 } from 'node:net'
import { splitList } from './config.js'

export interface NetworkRange {
  wildcard: boolean
  cidrs: string[]
  /** a loopback range was named explicitly, so loopback traffic must not be short-circuited */
  hasLoopback: boolean
}

export interface FamilyRanges {
  v4: NetworkRange
  v6: NetworkRange
}

/** Splits a CIDR list by family. Entries are expected to be validated already (flags.ts). */
export function separateV4V6(list: string): FamilyRanges {
  if (list.trim() === '*') {
    return { v4: { wildcard: true, cidrs: [], hasLoopback: false }, v6: { wildcard: true, cidrs: [], hasLoopback: false } }
  }
  const v4: NetworkRange = { wildcard: false, cidrs: [], hasLoopback: false }
  const v6: NetworkRange = { wildcard: false, cidrs: [], hasLoopback: false }
  for (const entry of splitList(list)) {
    const [addr = ''] = entry.split('/')
    if (isIPv4(addr)) {
      v4.cidrs.push(entry)
      if (addr.startsWith('127.')) v4.hasLoopback = true
    } else if (isIPv6(addr)) {
      v6.cidrs.push(entry.toLowerCase())
      if (isV6Loopback(addr)) v6.hasLoopback = true
    }
  }
  return { v4, v6 }
}

function isV6Loopback(addr: string): boolean {
  return /^(0*:)*:?0*1$/.test(addr) || addr === '::1'
}

/** DNS servers split by family (the --dns-servers list). */
export function splitServers(list: string): { v4: string[]; v6: string[] } {
  const servers = splitList(list)
  return { v4: servers.filter((s) => isIPv4(s)), v6: servers.filter((s) => isIPv6(s)) }
}
