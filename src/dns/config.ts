// The DNS proxy's settings, with Istio's defaults (pkg/dns: 15053 on localhost, 5 s upstream timeout).
import type { HostsLine } from './table.js'
import type { Nameserver } from './resolv-conf.js'

export interface DnsConfig {
  /** 0 disables the DNS proxy */
  port: number
  /** where to forward what the table does not know: --dns-upstream, else resolv.conf's nameservers */
  upstreams: Nameserver[]
  /** the pod's search list (resolv.conf): gives the namespace and the suffixes answered by CNAME */
  search: string[]
  /** --dns-hosts FILE, /etc/hosts syntax */
  hosts: HostsLine[]
  timeoutMs: number
  /**
   * TCP: connections at once (then the one idle longest gives way), time without a query or reply before
   * closing one, time a frame may take from its first byte to its last, largest query frame
   */
  maxTcpConnections: number
  tcpIdleMs: number
  tcpFrameMs: number
  maxQueryBytes: number
  /** replies waiting to be written across all TCP connections: over it, no connection is read */
  maxTcpBufferedBytes: number
  /** queries being forwarded at once (less when the fd budget's share is smaller); more get SERVFAIL at once */
  maxInflight: number
}

export const defaultDnsConfig: DnsConfig = {
  port: 15053,
  upstreams: [],
  search: [],
  hosts: [],
  timeoutMs: 5000,
  maxTcpConnections: 256,
  tcpIdleMs: 10_000,
  tcpFrameMs: 2000,
  maxQueryBytes: 4096,
  maxTcpBufferedBytes: 4 * 1024 * 1024,
  maxInflight: 4096,
}
