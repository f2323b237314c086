// DNS in the lab, as a pod sees it: names from the sidecar's table and from the lab's DNS server through
// the capture (UDP and TCP), with both rule layouts; SERVFAIL when the lab's DNS server is gone; the
// sidecar's own upstream queries not captured again (zone 1, RETURN); Istio's metric names on 15020;
// `lab down` leaves no namespace, resolv.conf or dnsmasq behind.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { alive } from '../../src/sys/exec.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const inPod = (lab: string, pod: string, cmd: string[], uid?: number) =>
  cli(['lab', 'exec', pod, '--lab', lab, ...(uid === undefined ? [] : ['--uid', String(uid)]), '--', ...cmd])

/** dig's answer section as [name, ttl, type, data] rows, and its status line */
async function dig(lab: string, pod: string, args: string[]) {
  const r = await inPod(lab, pod, ['dig', '+time=10', '+tries=1', ...args])
  const status = /status: (\w+)/.exec(r.stdout)?.[1]
  const answer = r.stdout
    .split('\n')
    .filter((l) => l && !l.startsWith(';'))
    .map((l) => l.split(/\s+/))
    .map(([name, ttl, , type, data]) => ({ name, ttl: Number(ttl), type, data }))
  return { status, answer, text: r.stdout }
}

async function stat(lab: string, name: string): Promise<number> {
  const r = await inPod(lab, 'productpage', ['curl', '-s', `127.0.0.1:15000/stats?filter=^${name.replace(/\./g, '\\.')}$`])
  return Number(/: (\d+)/.exec(r.stdout)?.[1] ?? NaN)
}

for (const layout of ['legacy', 'dns-capture'] as const) {
  t.test(
    `${layout}: names resolve through the sidecar (UDP and TCP); the sidecar's own queries are not captured again`,
    rootOnly(),
    async (t) => {
      const lab = `sltdns${layout === 'legacy' ? 'l' : 'c'}${process.pid % 1000}`
      t.teardown(() => cli(['lab', 'down', '--lab', lab]))
      const up = await cli(['lab', 'up', '--lab', lab, ...(layout === 'legacy' ? ['--compat', 'legacy'] : ['--dns-capture'])])
      t.equal(up.code, 0, up.stderr)

      const getent = await inPod(lab, 'productpage', ['getent', 'hosts', 'reviews'])
      t.match(getent.stdout, /^198\.18\.0\.20\s+reviews\.default\.svc\.cluster\.local/, 'getent hosts reviews: the service address')
      t.match((await inPod(lab, 'productpage', ['getent', 'hosts', 'db.lab.test'])).stdout, /^198\.18\.0\.30\s+db\.lab\.test/)

      const table0 = await stat(lab, 'dns.answered_from_table')
      const fwd0 = await stat(lab, 'dns.forwarded')
      for (const proto of ['+notcp', '+tcp']) {
        const fromTable = await dig(lab, 'productpage', [proto, '+search', 'reviews'])
        t.same(
          fromTable.answer,
          [{ name: 'reviews.default.svc.cluster.local.', ttl: 30, type: 'A', data: '198.18.0.20' }],
          `${proto} reviews: the sidecar's table (TTL 30)`,
        )
        const forwarded = await dig(lab, 'productpage', [proto, 'db.lab.test'])
        t.same(
          forwarded.answer,
          [{ name: 'db.lab.test.', ttl: 10, type: 'A', data: '198.18.0.30' }],
          `${proto} db.lab.test: the lab's DNS server's answer (TTL 10)`,
        )
      }
      t.equal(await stat(lab, 'dns.answered_from_table'), table0 + 2, 'both reviews lookups answered by the sidecar')
      t.equal(await stat(lab, 'dns.forwarded'), fwd0 + 2, 'both db.lab.test lookups forwarded by the sidecar')
      t.equal(
        await stat(lab, 'dns.requests'),
        (await stat(lab, 'dns.answered_from_table')) + (await stat(lab, 'dns.forwarded')),
        'every query the sidecar saw was an app query: none of its own upstream queries came back to it (no loop)',
      )

      // the sidecar's upstream query in conntrack: to 198.18.0.53:53, answered by 198.18.0.53 itself (not
      // redirected), and in zone 1 with the legacy layout's raw rules
      const ct = await inPod(lab, 'productpage', ['conntrack', '-L', '-p', 'udp', '-d', '198.18.0.53'], 0)
      const upstreamEntries = ct.stdout.split('\n').filter((l) => /dport=53 .*src=198\.18\.0\.53 dst=198\.18\.0\.10 sport=53/.test(l))
      t.ok(upstreamEntries.length > 0, "the sidecar's own upstream queries went out unchanged", { conntrack: ct.stdout })
      t.ok(
        upstreamEntries.every((l) => /zone=1/.test(l)),
        'in conntrack zone 1 (both layouts put them there)',
      )
      const nat = await inPod(lab, 'productpage', ['iptables', '-t', 'nat', '-v', '-n', '-L'], 0)
      const own =
        layout === 'legacy'
          ? /^\s*(\d+)\s+\d+\s+RETURN\s.*udp dpt:53 owner UID match 1337/m
          : /^\s*(\d+)\s+\d+\s+RETURN\s.*owner UID match 1337/m
      t.ok(Number(own.exec(nat.stdout)?.[1]) > 0, "the RETURN rule for uid 1337 counted the sidecar's queries")

      const ratings = await dig(lab, 'ratings', ['reviews.default.svc.cluster.local'])
      t.equal(ratings.answer[0]?.ttl, 10, 'ratings (no sidecar) asks the lab DNS server directly')

      const metrics = await inPod(lab, 'productpage', ['curl', '-s', '127.0.0.1:15020/stats/prometheus'])
      for (const name of [
        'istio_agent_dns_requests_total',
        'istio_agent_dns_upstream_requests_total',
        'istio_agent_dns_upstream_failures_total',
        'istio_agent_dns_upstream_request_duration_seconds_bucket',
      ]) {
        t.match(metrics.stdout, new RegExp(`^${name}`, 'm'), `${name} on 15020`)
      }

      // the lab's DNS server gone: the sidecar answers SERVFAIL (dig waits 10 s, the sidecar at most 5)
      process.kill(readState(lab)!.dns!.pid!, 'SIGKILL')
      const down = await dig(lab, 'productpage', ['db.lab.test'])
      t.equal(down.status, 'SERVFAIL', 'SERVFAIL from the sidecar', { dig: down.text })
      t.same(down.answer, [])
      t.equal(
        (await dig(lab, 'productpage', ['reviews.default.svc.cluster.local'])).answer[0]?.data,
        '198.18.0.20',
        'the table still answers',
      )
    },
  )
}

t.test('lab down removes the DNS namespace, the resolv.conf files and dnsmasq', rootOnly(), async (t) => {
  const lab = `sltdnsd${process.pid % 1000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  t.equal((await cli(['lab', 'up', '--lab', lab])).code, 0)
  const pid = readState(lab)!.dns!.pid!
  t.ok(alive(pid), 'dnsmasq runs')
  t.ok(existsSync(`/etc/netns/${lab}-productpage/resolv.conf`))
  const app = await inPod(lab, 'ratings', ['curl', '-s', 'http://productpage:9080/'])
  t.match(JSON.parse(app.stdout), { service: 'productpage', upstream: { service: 'reviews' } }, 'productpage calls reviews by name')
  // the injector's layout without --dns-capture: productpage's lookups go straight to the lab's DNS server
  const direct = await dig(lab, 'productpage', ['reviews.default.svc.cluster.local'])
  t.same(
    direct.answer,
    [{ name: 'reviews.default.svc.cluster.local.', ttl: 10, type: 'A', data: '198.18.0.20' }],
    'without capture: the DNS server answers',
  )
  t.equal(await stat(lab, 'dns.requests'), 0, 'the sidecar saw no query')
  t.equal((await cli(['lab', 'down', '--lab', lab])).code, 0)
  t.same(await listNetns(`${lab}-`), [])
  t.notOk(alive(pid), 'dnsmasq is gone')
  t.notOk(existsSync(`/etc/netns/${lab}-productpage`), 'no resolv.conf is left')
})
