export { DnsServer } from './server.js'
export { defaultDnsConfig, type DnsConfig } from './config.js'
export { parseDnsFlags, dnsFlags } from './flags.js'
