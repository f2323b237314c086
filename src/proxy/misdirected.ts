// Connections a listener refuses because they would make the proxy talk to itself, told apart by cause:
//  - a direct connection: addressed to a listener's own port (someone dialled 198.18.0.20:15001). It names no
//    destination, and it says nothing about the capture rules or the proxy's identity: anyone who can reach
//    the pod can send one. A warning, and no advice.
//  - a loop: the proxy's own upstream connection captured back into a listener (loop-guard.ts). That is the
//    capture rules not exempting this process, and the advice depends on the mode and on who looped.
// Both are counted and logged once per burst (burst-log.ts).
import { networkInterfaces } from 'node:os'
import type { Logger } from '../logger.js'
import { BurstLog } from './burst-log.js'
import type { ListenerKind } from './clusters.js'
import type { InterceptionMode } from './config.js'
import { formatEndpoint, type Endpoint } from '../net/address.js'
import type { Counter, Stats } from '../stats/stats.js'

export interface DirectHit {
  listener: string
  remote: Endpoint | undefined
  dst: Endpoint
}

export interface LoopHit {
  listener: string
  port: number
  remote: Endpoint | undefined
  /** which listener's connection owned the upstream socket that came back */
  from: ListenerKind
}

export interface Identity {
  mode: InterceptionMode
  uid: number | undefined
  gid: number | undefined
}

/** Whether an address is one of this network namespace's own (loopback included). */
export function isLocalAddress(address: string | undefined): boolean {
  if (!address) return false
  const plain = address.replace(/^::ffff:/, '')
  if (plain.startsWith('127.') || plain === '::1') return true
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === plain))
}

/**
 * What to do about a loop, only as far as it is true. A loop proves that the rules did not exempt this
 * process's uid or gid; which uid they do exempt the proxy cannot see, so it names its own and the flags.
 */
export function loopAdvice(hit: Pick<LoopHit, 'from' | 'remote'>, id: Identity): string {
  if (hit.from === 'inbound') {
    return id.mode === 'TPROXY'
      ? `The inbound passthrough's transparent connection to the app (from ${formatEndpoint(hit.remote)}, mark 0x539) was ` +
          `captured: rules generated with -m TPROXY leave it alone by its mark and the proxy's group; check the rules were ` +
          `generated with -m TPROXY and -g/--proxy-gid ${id.gid}.`
      : `The inbound passthrough's connection to the app (from ${formatEndpoint(hit.remote)}) was captured: the rules must let ` +
          'connections from 127.0.0.6 (::6) over lo through (ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN, as istio-iptables writes it).'
  }
  if (id.mode === 'TPROXY') {
    // a TPROXY sidecar needs uid 0 for its transparent sockets: its group is what the rules must exempt
    return (
      `A TPROXY sidecar keeps uid 0 and is exempted by its group: generate the rules with -g/--proxy-gid ${id.gid}, or start the ` +
      'proxy with --gid set to the group they exempt.'
    )
  }
  const other = id.uid === 1337 ? 'istio-iptables was given another -u' : "istio-iptables' -u defaults to 1337"
  return (
    `Run the proxy as the uid the rules exempt (as root: --uid N; ${other}), or generate the rules with -u/--proxy-uid ${id.uid} ` +
    `(or -g/--proxy-gid ${id.gid}).`
  )
}

export class MisdirectedLog {
  readonly #direct: BurstLog<DirectHit>
  readonly #loops: BurstLog<LoopHit>
  readonly #directCount: Counter
  readonly #loopCount: Counter

  constructor(log: Logger, stats: Stats, identity: () => Identity) {
    // our own names, as sidecar.fd_exhausted: Envoy has no counter for either
    this.#directCount = stats.counter('sidecar.direct_to_listener')
    this.#loopCount = stats.counter('sidecar.upstream_loop')
    this.#direct = new BurstLog(
      (h) => {
        const where = isLocalAddress(h.remote?.address) ? 'an address of this pod' : 'another host'
        log.warn(
          { listener: h.listener, src: formatEndpoint(h.remote), dst: formatEndpoint(h.dst) },
          `direct connection to the proxy's listener port ${h.dst.port} (${formatEndpoint(h.dst)}) from ` +
            `${formatEndpoint(h.remote)}, ${where}: it was addressed to the listener itself, so there is nothing to ` +
            'proxy it to; closed (BlackHoleCluster, destination_is_proxy_listener). One line per burst.',
        )
      },
      (s) =>
        log.warn(
          { count: s.count, sources: s.sources, ms: s.ms },
          `${s.count} more direct connections to the proxy's listener ports in ${s.ms} ms, from ${s.sources.join(', ')}; closed`,
        ),
    )
    this.#loops = new BurstLog(
      (h) => {
        const id = identity()
        log.error(
          { listener: h.listener, src: formatEndpoint(h.remote), uid: id.uid, gid: id.gid, mode: id.mode },
          `traffic loop: the proxy's own upstream connection from ${formatEndpoint(h.remote)} was captured back into ` +
            `${h.listener} (port ${h.port}): the capture rules do not exempt this process (uid ${id.uid}, gid ${id.gid}, ` +
            `${id.mode} mode). Connection refused. ${loopAdvice(h, id)} One line per burst.`,
        )
      },
      (s) =>
        log.error(
          { count: s.count, sources: s.sources, ms: s.ms },
          `${s.count} more traffic loops in ${s.ms} ms (the proxy's own upstream connections from ${s.sources.join(', ')}); refused`,
        ),
    )
  }

  direct(hit: DirectHit): void {
    this.#directCount.inc()
    this.#direct.record(hit, hit.remote?.address ?? '?')
  }

  loop(hit: LoopHit): void {
    this.#loopCount.inc()
    this.#loops.record(hit, hit.remote?.address ?? '?')
  }

  flush(): void {
    this.#direct.flush()
    this.#loops.flush()
  }
}
