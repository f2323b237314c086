// Configuration in, plan (and its dry-run text) out. The command and the golden tests both render through
// planText, so what the tests check is what `--dry-run` prints.
import { InvalidFlagError } from '../errors.js'
import { renderRestore } from '../iptables/ipt-rules.js'
import type { Backend } from '../iptables/plan.js'
import { buildHostIptables, buildInpodIptables } from './build-iptables.js'
import { buildHostNft, buildInpodNft, renderInpodNft } from './build-nftables.js'
import type { InpodConfig } from './config.js'
import { INPOD_TPROXY_MARK, INPOD_TPROXY_MASK, ROUTE_RULE_PRIORITY, ROUTE_TABLE, hex } from './config.js'

/** 'pod': the rules inside a pod's namespace; 'host': the node's probe SNAT. */
export type InpodMode = 'pod' | 'host'

/**
 * Packets carrying the connmark's mark (replies to ztunnel's connections) are looked up in a table whose
 * only route is `local` via lo, so they reach ztunnel's socket in the pod.
 */
export interface InpodRouting {
  /** `ip -4` always, `ip -6` with IPv6 */
  families: Array<'-4' | '-6'>
  /** `ip route replace ...` then `ip -6 route replace ...`: istio-cni replaces (RouteReplace), so a rerun is harmless */
  routes: string[]
  /** `ip rule add ...` / `ip -6 rule add ...`, after the routes, as istio-cni orders them */
  rules: string[]
}

export interface InpodPlan {
  backend: Backend
  mode: InpodMode
  /** iptables-restore --noflush input ('' with nftables) */
  ipv4: string
  /** ip6tables-restore --noflush input ('' without IPv6, or with nftables) */
  ipv6: string
  /** the nft script, one transaction ('' with iptables) */
  nft: string
  /** the policy routing istio-cni sets up over netlink (in-pod only), or null */
  routing: InpodRouting | null
}

export interface InpodBuildOptions {
  mode: InpodMode
  nativeNftables: boolean
}

export function buildInpodPlan(c: InpodConfig, o: InpodBuildOptions): InpodPlan {
  const routing = o.mode === 'pod' ? inpodRouting(c.ipv6) : null
  if (o.nativeNftables) {
    let nft: string
    if (o.mode === 'pod') nft = renderInpodNft(buildInpodNft(c).rules)
    else if (c.kubeletUid === null) {
      throw new InvalidFlagError(
        "--host --native-nftables needs --kubelet-uid N: nft has no --socket-exists, so the rule matches kubelet's uid",
      )
    } else nft = renderInpodNft(buildHostNft(c, c.kubeletUid).rules)
    return { backend: 'nftables', mode: o.mode, ipv4: '', ipv6: '', nft, routing }
  }
  const rules = o.mode === 'pod' ? buildInpodIptables(c) : buildHostIptables(c)
  return { backend: 'iptables', mode: o.mode, ipv4: renderRestore(rules.v4), ipv6: renderRestore(rules.v6), nft: '', routing }
}

export function inpodRouting(ipv6: boolean): InpodRouting {
  const rule = `rule add fwmark ${hex(INPOD_TPROXY_MARK)}/${hex(INPOD_TPROXY_MASK)} pref ${ROUTE_RULE_PRIORITY} lookup ${ROUTE_TABLE}`
  const route = (all: string) => `route replace local ${all} dev lo table ${ROUTE_TABLE}`
  return {
    families: ipv6 ? ['-4', '-6'] : ['-4'],
    routes: [`ip ${route('0.0.0.0/0')}`, ...(ipv6 ? [`ip -6 ${route('::/0')}`] : [])],
    rules: [`ip ${rule}`, ...(ipv6 ? [`ip -6 ${rule}`] : [])],
  }
}

/** What `--dry-run` prints: the IPv4 restore input then the IPv6 one, or the nft script. */
export function planText(plan: InpodPlan): string {
  return plan.backend === 'nftables' ? plan.nft : plan.ipv4 + plan.ipv6
}
