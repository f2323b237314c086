// A pod's own addresses, read once when the ztunnel takes the pod (its stand-in for the workload addresses
// ztunnel learns from xDS): `ip -j addr` run inside the pod's network namespace, entered through the
// descriptor the ztunnel holds. The access log and the metrics name a peer pod by these.
import { execFile } from 'node:child_process'

/** The pod's global addresses; empty when they cannot be read (the log then says "unknown" for it). */
export function podAddresses(netnsFd: number): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=/proc/${process.pid}/fd/${netnsFd}`, 'ip', '-j', 'addr', 'show'], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve([])
      try {
        const links = JSON.parse(stdout) as { addr_info?: { local?: string; scope?: string }[] }[]
        resolve(links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.scope === 'global' && a.local).map((a) => a.local!)))
      } catch {
        resolve([])
      }
    })
  })
}
