// What an ambient trace reads besides the kernel's trace: the ztunnel's access log ("connection complete"
// lines: the peer that connected and the destination it asked for), and the called pod's reply routing
// (istio-cni's fwmark 0x111 rule and the route table 100 gives for the caller's address).
import { execIn } from '../../sys/netns.js'
import { parseEndpoint, type Endpoint } from '../../net/address.js'

/**
 * One ztunnel access line: src.addr is the socket that connected, dst.addr where it was going (for an outbound
 * HBONE hop the peer's 15008, and dst.hbone_addr the target), and for HBONE both ends' identities.
 */
export interface ZtunnelLine {
  direction: 'outbound' | 'inbound'
  src: Endpoint
  dst: Endpoint
  hbone?: { target: Endpoint | null; srcIdentity: string | null; dstIdentity: string | null }
}

/** The connmark istio-cni gives the ztunnel's connections, the reply mark restored from it, and its table. */
export const REPLY_MARK = 0x111
export const REPLY_TABLE = 100

function field(line: string, name: string): string | undefined {
  return new RegExp(`(?:^|\\s)${name.replace('.', '\\.')}=("?)([^"\\s]+)\\1`).exec(line)?.[2]
}

/** A line that is not a "connection complete" line with both addresses is skipped (ztunnel logs other things). */
export function parseZtunnelLine(line: string): ZtunnelLine | undefined {
  if (!line.includes('connection complete')) return undefined
  const src = field(line, 'src.addr')
  const dst = field(line, 'dst.addr')
  const direction = field(line, 'direction')
  if (!src || !dst || (direction !== 'outbound' && direction !== 'inbound')) return undefined
  try {
    const target = field(line, 'dst.hbone_addr')
    const srcIdentity = field(line, 'src.identity') ?? null
    const dstIdentity = field(line, 'dst.identity') ?? null
    const hbone = target || srcIdentity ? { hbone: { target: target ? parseEndpoint(target) : null, srcIdentity, dstIdentity } } : {}
    return { direction, src: parseEndpoint(src), dst: parseEndpoint(dst), ...hbone }
  } catch {
    return undefined
  }
}

export function parseZtunnelLog(text: string): ZtunnelLine[] {
  return text.split('\n').flatMap((l) => parseZtunnelLine(l) ?? [])
}

/**
 * The reply route in a pod, as the kernel states it: the policy rule for the mark, table 100's routes, and
 * `ip route get CALLER mark 0x111` (what a marked reply to the caller is routed by) beside the unmarked one.
 */
export async function readReplyRouting(ns: string, caller: string): Promise<string[]> {
  const lines: string[] = []
  const family = caller.includes(':') ? '-6' : '-4'
  const rules = await execIn(ns, ['ip', family, 'rule', 'show'], { allowFailure: true })
  for (const l of rules.stdout.split('\n').filter((x) => x.includes(`lookup ${REPLY_TABLE}`)))
    lines.push(`ip ${family} rule: ${l.replace(/\s+/g, ' ').trim()}`)
  const routes = await execIn(ns, ['ip', family, 'route', 'show', 'table', String(REPLY_TABLE)], { allowFailure: true })
  for (const l of routes.stdout.split('\n').filter(Boolean)) lines.push(`ip ${family} route table ${REPLY_TABLE}: ${l.trim()}`)
  for (const mark of [REPLY_MARK, 0]) {
    const get = await execIn(ns, ['ip', family, 'route', 'get', caller, ...(mark ? ['mark', `0x${mark.toString(16)}`] : [])], {
      allowFailure: true,
    })
    const first = get.stdout.split('\n')[0]?.replace(/\s+/g, ' ').trim()
    if (first) lines.push(`ip route get ${caller}${mark ? ` mark 0x${mark.toString(16)}` : ''}: ${first}`)
  }
  return lines
}
