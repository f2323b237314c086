// What the rule builder produces and what apply / verify / cleanup consume. The builder is pure
// (config in, plan out); only apply.ts runs programs.

export type Backend = 'iptables' | 'nftables'

export interface TproxyRouting {
  /** fwmark that selects the route table (--istio-inbound-tproxy-mark) */
  mark: number
  /** policy routing table (--istio-inbound-tproxy-route-table) */
  table: number
  /** also set up the IPv6 rule and route */
  ipv6: boolean
}

export interface Plan {
  backend: Backend
  /** iptables-restore --noflush input for IPv4 ('' when there is nothing) */
  ipv4: string
  /** ip6tables-restore --noflush input ('' when IPv6 is off) */
  ipv6: string
  /** nft script, one transaction (backend 'nftables' only, else '') */
  nft: string
  /** policy routing that TPROXY mode needs, or null */
  tproxy: TproxyRouting | null
}
