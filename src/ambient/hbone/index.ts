// HBONE (HTTP/2 CONNECT over mutual TLS on 15008), the protocol ztunnels speak to each other.
export * from './common.js'
export { HboneClient, type HboneClientCounters, type HboneClientOptions, type HboneConnectOptions } from './client.js'
export {
  HboneServer,
  type HbonePeer,
  type HboneRefusal,
  type HboneServerCounters,
  type HboneServerOptions,
  type HboneTunnel,
} from './server.js'
export { resetDuplex, splice, type SpliceResult } from './splice.js'
