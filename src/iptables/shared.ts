// Decisions both builders (iptables and nftables) make the same way.
import { splitList } from './config.js'
import type { RuleConfig } from './config.js'

/**
 * Whether DNS is captured at all. --redirect-dns alone, without --capture-all-dns and without a server
 * to capture, captures nothing (istio-iptables logs a warning and carries on).
 */
export function captureDNS(c: RuleConfig): boolean {
  return c.redirectDNS && (c.captureAllDNS || c.dnsServersV4.length > 0 || c.dnsServersV6.length > 0)
}

export interface OwnerGroupFilter {
  /** true: capture every group except `values`; false: capture only `values` */
  except: boolean
  values: string[]
}

/** ISTIO_OUTBOUND_OWNER_GROUPS(_EXCLUDE): the exclude list counts only when the include list is `*`. */
export function ownerGroupFilter(c: RuleConfig): OwnerGroupFilter {
  const include = c.ownerGroupsInclude.trim()
  if (include === '*' || include === '') return { except: true, values: splitList(c.ownerGroupsExclude) }
  return { except: false, values: splitList(include) }
}

export type OwnerKind = 'uid' | 'gid'

/** The proxy's identities in the order Istio writes their rules: every UID, then every GID. */
export function proxyOwners(c: RuleConfig): Array<{ kind: OwnerKind; id: string }> {
  return [
    ...splitList(c.proxyUID).map((id) => ({ kind: 'uid' as const, id })),
    ...splitList(c.proxyGID).map((id) => ({ kind: 'gid' as const, id })),
  ]
}
