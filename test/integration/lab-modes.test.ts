// The lab in both interception modes, IPv4 and IPv6: who the app sees as its peer tells which path a
// request took (127.0.0.6 / ::6 = REDIRECT's inbound sidecar; the caller's own address = TPROXY).
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { execIn, listNetns } from '../../src/sys/netns.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function get(lab: string, from: string, url: string): Promise<Record<string, unknown>> {
  const r = await cli(['lab', 'exec', from, '--lab', lab, '--', 'curl', '-s', '--max-time', '5', url])
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>
  } catch {
    return { code: r.code, stdout: r.stdout, stderr: r.stderr }
  }
}

/** Lines of an access log of a pod. */
async function accessLog(lab: string, pod: string): Promise<string[]> {
  const r = await cli(['lab', 'logs', pod, '--lab', lab])
  return r.stdout.split('\n').filter((l) => l.startsWith('[') && l.includes('"- - -"'))
}

export async function assertRedirectPeers(t: Test, lab: string): Promise<void> {
  t.match(
    await get(lab, 'productpage', 'http://198.18.0.20:9080/'),
    { service: 'reviews', peer: '127.0.0.6', local: '198.18.0.20:9080' },
    'IPv4: reviews sees its sidecar (127.0.0.6)',
  )
  t.match(
    await get(lab, 'productpage', 'http://[2001:2::20]:9080/'),
    { service: 'reviews', peer: '::6', local: '[2001:2::20]:9080' },
    'IPv6: reviews sees its sidecar (::6), not 2001:2::10',
  )
  const out = await accessLog(lab, 'productpage')
  t.ok(
    out.some((l) => / PassthroughCluster \[2001:2::10\]:\d+ \[2001:2::20\]:9080 /.test(l)),
    "IPv6 went through productpage's outbound sidecar",
  )
}

t.test('REDIRECT lab: IPv6 traffic goes through both sidecars (ip6tables rules in the pods)', rootOnly(), async (t) => {
  const lab = `sltm${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  for (const pod of ['productpage', 'reviews']) {
    const rules = await execIn(`${lab}-${pod}`, ['ip6tables', '-t', 'nat', '-S'])
    t.match(rules.stdout, /-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/, `${pod}: ip6tables nat has the capture rules`)
  }
  await assertRedirectPeers(t, lab)
  const status = await cli(['lab', 'status', '--lab', lab])
  t.match(
    status.stdout,
    /reviews: capture rules[\s\S]*?\n\s+[1-9]\d*\s+ip6 nat\s+-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/,
    'status counts the IPv6 packets too',
  )
  await cli(['lab', 'down', '--lab', lab])
  t.same(await listNetns(`${lab}-`), [])
})

/** What TPROXY mode leaves in a namespace: fwmark rules, table 133 routes, mangle ISTIO rules, marked conntrack entries. */
async function tproxyTraces(ns: string): Promise<string[]> {
  const found: string[] = []
  for (const family of ['-4', '-6']) {
    const rules = await execIn(ns, ['ip', family, 'rule', 'show'], { allowFailure: true })
    found.push(
      ...rules.stdout
        .split('\n')
        .filter((l) => /fwmark 0x539|lookup 133/.test(l))
        .map((l) => `ip ${family} rule ${l.trim()}`),
    )
    const routes = await execIn(ns, ['ip', family, 'route', 'show', 'table', '133'], { allowFailure: true })
    found.push(
      ...routes.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => `ip ${family} route table 133: ${l}`),
    )
  }
  for (const save of ['iptables-save', 'ip6tables-save']) {
    const mangle = await execIn(ns, [save, '-t', 'mangle'], { allowFailure: true })
    found.push(
      ...mangle.stdout
        .split('\n')
        .filter((l) => /ISTIO|TPROXY|CONNMARK|0x539/.test(l))
        .map((l) => `${save} mangle: ${l}`),
    )
  }
  const ct = await execIn(ns, ['conntrack', '-L', '-m', '1337'], { allowFailure: true })
  found.push(
    ...ct.stdout
      .split('\n')
      .filter((l) => l.includes('mark=1337'))
      .map((l) => `conntrack: ${l}`),
  )
  return found
}

t.test(
  'TPROXY lab: the apps see their callers (IPv4 and IPv6); down/up switches to REDIRECT with nothing left over',
  rootOnly(),
  async (t) => {
    const lab = `sltt${process.pid % 10000}`
    t.teardown(() => cli(['lab', 'down', '--lab', lab]))
    const rootRulesBefore = await new Promise<string>((r) => execFile('ip', ['rule', 'show'], (_e, out) => r(out)))
    const upped = await cli(['lab', 'up', '--lab', lab, '--mode', 'TPROXY'])
    t.equal(upped.code, 0, upped.stderr)
    t.match(upped.stdout, /rules: istio, mode: TPROXY/)
    t.match(
      upped.stdout,
      /productpage\s+\S+\s+198\.18\.0\.10\s+2001:2::10\s+\d+ \(uid 1000\)\s+\d+ \(uid 0\)/,
      'the TPROXY sidecar runs as uid 0',
    )
    const sidecarPid = readState(lab)!.pods.reviews!.pids.sidecar!
    const proc = readFileSync(`/proc/${sidecarPid}/status`, 'utf8')
    t.match(proc, /^Gid:\s+1337\s/m, 'with gid 1337')
    t.match(proc, /^CapEff:\s+0000000000001040$/m, 'and only CAP_NET_ADMIN and CAP_SETGID')

    t.match(
      await get(lab, 'productpage', 'http://198.18.0.20:9080/'),
      { service: 'reviews', peer: '198.18.0.10', local: '198.18.0.20:9080' },
      'IPv4: reviews sees productpage (198.18.0.10)',
    )
    t.match(
      await get(lab, 'productpage', 'http://[2001:2::20]:9080/'),
      { service: 'reviews', peer: '2001:2::10', local: '[2001:2::20]:9080' },
      'IPv6: reviews sees productpage (2001:2::10)',
    )
    t.match(
      await get(lab, 'ratings', 'http://198.18.0.10:9080/'),
      { service: 'productpage', peer: '198.18.0.30', upstream: { service: 'reviews', peer: '198.18.0.10' } },
      'ratings -> productpage -> reviews: each app sees its caller',
    )
    const inbound = await accessLog(lab, 'reviews')
    t.ok(
      inbound.some((l) => / InboundPassthroughClusterIpv4 198\.18\.0\.10:\d+ 198\.18\.0\.20:9080 198\.18\.0\.10:\d+ /.test(l)),
      "reviews' sidecar relayed it, its upstream from productpage's address",
    )
    t.ok(
      inbound.some((l) => / InboundPassthroughClusterIpv6 \[2001:2::10\]:\d+ \[2001:2::20\]:9080 /.test(l)),
      'and the IPv6 one',
    )

    // --verbose: the routing and every rule counter (the short status has only the rules that caught packets)
    const status = await cli(['lab', 'status', '--verbose', '--lab', lab])
    t.match(
      status.stdout,
      /reviews: TPROXY routing[^\n]*\n\s+ip -4 rule: \d+:\s+from all fwmark 0x539 lookup 133\n\s+ip -4 route table 133: local default dev lo/,
      'status shows the ip rule and table 133',
    )
    t.match(
      status.stdout,
      /reviews: capture rules[\s\S]*?\n\s+[1-9]\d*\s+mangle\s+-A ISTIO_TPROXY ! -d 127\.0\.0\.1\/32 -p tcp -j TPROXY/,
      'and counts the packets the TPROXY rule diverted',
    )
    t.match(status.stdout, /reviews: capture rules[\s\S]*?\n\s+[1-9]\d*\s+ip6 mangle\s+-A ISTIO_TPROXY/, 'IPv6 too')

    await cli(['lab', 'down', '--lab', lab])
    t.same(await listNetns(`${lab}-`), [], 'down removed every namespace (and the rules and routes in them)')
    const again = await cli(['lab', 'up', '--lab', lab])
    t.equal(again.code, 0, again.stderr)
    t.match(again.stdout, /mode: REDIRECT/)
    for (const pod of ['productpage', 'reviews', 'ratings'])
      t.same(await tproxyTraces(`${lab}-${pod}`), [], `${pod}: no fwmark rule, table 133 route, mangle rule or marked connection is left`)
    await assertRedirectPeers(t, lab)
    await cli(['lab', 'down', '--lab', lab])
    t.same(await listNetns(`${lab}-`), [])
    const rootRulesAfter = await new Promise<string>((r) => execFile('ip', ['rule', 'show'], (_e, out) => r(out)))
    t.equal(rootRulesAfter, rootRulesBefore, "the host's own ip rules were never touched")
  },
)

t.test('lab up --mode: bad values and legacy + TPROXY are refused by name', rootOnly(), async (t) => {
  const bad = await cli(['lab', 'up', '--lab', 'sltbad', '--mode', 'NAT'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, '--mode: "NAT" is not one of REDIRECT, TPROXY')
  const legacy = await cli(['lab', 'up', '--lab', 'sltbad', '--mode', 'TPROXY', '--compat', 'legacy'])
  t.equal(legacy.code, 2)
  t.match(legacy.stderr, '--mode TPROXY needs the Istio layout')
  t.same(await listNetns('sltbad-'), [], 'nothing was built')
})
