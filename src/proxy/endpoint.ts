// The proxy's addresses: the module moved to src/net/address.ts (one address module for the proxy, the
// admin API, the lab and the trace); re-exported here so the proxy's imports stay as they are.
export { endpoint, endpointKey, formatEndpoint, plainAddress, type Endpoint } from '../net/address.js'
