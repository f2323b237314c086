// TPROXY's policy routing, as istio-iptables sets it up: packets carrying the inbound mark look up a
// table whose default route is local, so the kernel delivers them to the proxy's transparent socket.
import type { TproxyRouting } from './plan.js'
import { runAt, type Target } from './target.js'

function families(r: TproxyRouting): string[] {
  return r.ipv6 ? ['-4', '-6'] : ['-4']
}

const ruleArgs = (r: TproxyRouting) => ['fwmark', String(r.mark), 'lookup', String(r.table)]
const routeArgs = (r: TproxyRouting) => ['local', 'default', 'dev', 'lo', 'table', String(r.table)]

async function ruleCount(target: Target, family: string, r: TproxyRouting): Promise<number> {
  const shown = await runAt(target, 'ip', [family, 'rule', 'show', ...ruleArgs(r)])
  return shown.stdout.split('\n').filter((l) => l.trim()).length
}

async function hasRoute(target: Target, family: string, r: TproxyRouting): Promise<boolean> {
  const shown = await runAt(target, 'ip', [family, 'route', 'show', 'table', String(r.table)], { allowFailure: true })
  return /^local default dev lo\b/m.test(shown.stdout)
}

/** What is missing of the routing; empty when it is all there. */
export async function routingDelta(target: Target, r: TproxyRouting): Promise<string[]> {
  const delta: string[] = []
  for (const family of families(r)) {
    if ((await ruleCount(target, family, r)) === 0) delta.push(`routing: ip ${family} rule ${ruleArgs(r).join(' ')} missing`)
    if (!(await hasRoute(target, family, r))) delta.push(`routing: ip ${family} route ${routeArgs(r).join(' ')} missing`)
  }
  return delta
}

/** Idempotent: adds the rule only when absent (ip rule add would stack duplicates), replaces the route. */
export async function setupRouting(target: Target, r: TproxyRouting): Promise<boolean> {
  let changed = false
  for (const family of families(r)) {
    if ((await ruleCount(target, family, r)) === 0) {
      await runAt(target, 'ip', [family, 'rule', 'add', ...ruleArgs(r)])
      changed = true
    }
    if (!(await hasRoute(target, family, r))) {
      await runAt(target, 'ip', [family, 'route', 'replace', ...routeArgs(r)])
      changed = true
    }
  }
  return changed
}

/** The commands setupRouting runs when neither the rule nor the route is there (for --dry-run). */
export function setupCommands(r: TproxyRouting): string[] {
  return families(r).flatMap((family) => [
    ['ip', family, 'rule', 'add', ...ruleArgs(r)].join(' '),
    ['ip', family, 'route', 'replace', ...routeArgs(r)].join(' '),
  ])
}

/** The commands removeRouting runs when the rule and the route are there once each (for --dry-run). */
export function removalCommands(r: TproxyRouting): string[] {
  return families(r).flatMap((family) => [
    ['ip', family, 'rule', 'del', ...ruleArgs(r)].join(' '),
    ['ip', family, 'route', 'del', ...routeArgs(r)].join(' '),
  ])
}

/** Removes every copy of the rule and the route; nothing there is a no-op. */
export async function removeRouting(target: Target, r: TproxyRouting): Promise<void> {
  for (const family of families(r)) {
    for (let n = await ruleCount(target, family, r); n > 0; n--) {
      await runAt(target, 'ip', [family, 'rule', 'del', ...ruleArgs(r)])
    }
    if (await hasRoute(target, family, r)) await runAt(target, 'ip', [family, 'route', 'del', ...routeArgs(r)])
  }
}
