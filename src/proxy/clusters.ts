// Where a captured connection goes: Istio's clusters and filter chains for the two virtual listeners.
import type { OutboundTrafficPolicy } from './config.js'
import type { Endpoint } from '../net/address.js'
import type { Registry } from '../registry/registry.js'
import { ResponseFlag } from './response-flags.js'

export type ListenerKind = 'outbound' | 'inbound'

export const listenerNames: Record<ListenerKind, string> = {
  outbound: 'virtualOutbound',
  inbound: 'virtualInbound',
}

export type Route =
  | { kind: 'passthrough'; cluster: string; filterChain: string; destination: Endpoint; serviceName: string }
  | { kind: 'blackhole'; cluster: 'BlackHoleCluster'; filterChain: string; flags: ResponseFlag; reason: string }

export interface RouterOptions {
  outboundPort: number
  inboundPort: number
  policy: OutboundTrafficPolicy
  registry: Registry
}

export function route(kind: ListenerKind, dst: Endpoint | undefined, options: RouterOptions): Route {
  const name = listenerNames[kind]
  if (!dst) {
    // Not redirected: Envoy would keep the listener's own address as the destination and loop.
    return {
      kind: 'blackhole',
      cluster: 'BlackHoleCluster',
      filterChain: `${name}-blackhole`,
      flags: ResponseFlag.NoRouteFound,
      reason: 'no_original_dst',
    }
  }
  // Each listener's own port is a dead end (Istio's virtualOutbound-blackhole / virtualInbound-blackhole):
  // passing it through would dial the listener again. An inbound destination is this pod's own address, so
  // for virtualInbound both ports are: a caller that dialled the pod's :15001 would otherwise be passed on to
  // our own outbound listener, from 127.0.0.6 or (TPROXY) from the caller's address.
  const own = kind === 'outbound' ? [options.outboundPort] : [options.inboundPort, options.outboundPort]
  if (own.includes(dst.port)) {
    return {
      kind: 'blackhole',
      cluster: 'BlackHoleCluster',
      filterChain: `${name}-blackhole`,
      flags: ResponseFlag.NoHealthyUpstream,
      reason: 'destination_is_proxy_listener',
    }
  }
  if (kind === 'inbound') {
    const cluster = dst.family === 6 ? 'InboundPassthroughClusterIpv6' : 'InboundPassthroughClusterIpv4'
    return { kind: 'passthrough', cluster, filterChain: 'PassthroughFilterChain', destination: dst, serviceName: 'unknown' }
  }
  const known = options.registry.lookup(dst)
  if (options.policy === 'REGISTRY_ONLY' && !known) {
    return {
      kind: 'blackhole',
      cluster: 'BlackHoleCluster',
      filterChain: `${name}-blackhole`,
      flags: ResponseFlag.NoHealthyUpstream,
      reason: 'registry_only',
    }
  }
  return {
    kind: 'passthrough',
    cluster: 'PassthroughCluster',
    filterChain: `${name}-catchall-tcp`,
    destination: dst,
    serviceName: known?.name ?? 'unknown',
  }
}
