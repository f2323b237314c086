// PLACEHOLDER until the netns helper's branch merges
import { loadAddon } from './addon.js'
export interface NetnsSocketOptions {
  netns: number
  family: 4 | 6
  type: 'tcp' | 'udp'
  address?: string
  port?: number
  transparent?: boolean
  freebind?: boolean
  mark?: number
  reuseAddr?: boolean
  listen?: number
}
export function netnsSocket(opts: NetnsSocketOptions): number {
  return loadAddon<{ netnsSocket(o: NetnsSocketOptions): number }>().netnsSocket(opts)
}
