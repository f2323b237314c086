// The test files both relay engines must pass (issue 13), in one place. scripts/test.mjs runs them a second time
// with SIDECAR_LAB_TEST_RELAY=native, which makes every helper that starts `sidecar-lab proxy` add
// `--relay native` (test/helpers/engine.ts).
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

// A file is here when it starts real sidecars AND pushes bytes or connections through them, so the relay engine
// decides what it observes (bytes, FIN/RST, counters, access-log lines, descriptors).
export const engineFiles = [
  // 50 MB each way, half-close, both loop guards, refused, REGISTRY_ONLY, idle timeout, limits, resets, drain
  'test/integration/proxy.test.ts',
  // direct connections to the listener's own port from another host: closed, counted, one warning per burst
  'test/integration/proxy-direct.test.ts',
  // transparent upstream sockets (IP_TRANSPARENT + SO_MARK from relayAdd's bind), refused/timed-out upstreams
  'test/integration/proxy-tproxy.test.ts',
  // counters and Istio metrics after proxied connections: identical names and meaning for both engines
  'test/integration/admin.test.ts',
  // killed upstream, a peer that never reads (buffer limit, paused/resumed), slow reader, killed client
  'test/faults/peers.test.ts',
  // kill -9 and restart, 2,000 concurrent connections and descriptors back to the baseline, fd limit
  'test/faults/resources.test.ts',
  // random bytes into 15001/15006 relayed to real upstreams
  'test/faults/garbage.test.ts',
  // accept and upstream sockets when descriptors run out (the native engine dup()s each fd)
  'test/faults/fd-exhaustion.test.ts',
  // the loop guard under NAT source-port clashes (the native engine reports its upstream through trackUpstream)
  'test/faults/loop-guard-nat-clash.test.ts',
  // records from closed connections while the log cannot be written, drain on SIGTERM, reopen with a held connection
  'test/faults/access-log-full-disk.test.ts',
  'test/faults/access-log-reopen.test.ts',
  // ambient mode: the ztunnel's upstream sockets made in the pod's namespace (relayAdd's bind.netns), spoofed inbound
  'test/ambient/ztunnel.test.ts',
  // HBONE between mesh pods: relayed on node:net under --relay native too; the plain control on the engine
  'test/ambient/ztunnel-hbone.test.ts',
  'test/faults/access-log-stderr.test.ts',
]
// Not here, on purpose: access-log-open, flags-registry, test/flags/cli and test/proxy/command (the sidecar
// stops on a flag or path error before any byte moves; they pass --relay through the same helpers anyway),
// admin-methods and admin-regex (admin ports only), the lab, trace and bench tests (their sidecars are started
// by `lab up` and bench/peers.mjs, which have no engine switch yet), and relay-differential (runs both engines
// itself). test/proxy/ unit tests drive src/proxy/engines/node.ts in-process: node engine only.

/** Whether the built addon (build/Release, or SIDECAR_LAB_ADDON) exports the native engine: src/native/addon.ts. */
export async function addonHasRelay(root) {
  const addon = await import(pathToFileURL(join(root, 'dist/native/addon.js')).href)
  return addon.addonHasRelay()
}
