// lab status's text from a status object: short by default (a line per pod, per sidecar, per capture rule
// that caught packets), every counter with --verbose.
import t from 'tap'
import { renderShortStatus, renderVerboseStatus, type LabStatus, type RuleCounter } from '../../src/lab/status-render.js'

const rule = (table: string, packets: number, r: string): RuleCounter => ({ table, packets, bytes: packets * 60, rule: r })
const idle = ['raw', 'nat', 'mangle', 'ip6 raw', 'ip6 nat', 'ip6 mangle'].flatMap((table) =>
  Array.from({ length: 7 }, (_, i) => rule(table, 0, `-A ISTIO_OUTPUT -p tcp --dport ${1000 + i} -j RETURN`)),
)

const status: LabStatus = {
  lab: 'slt-x',
  up: true,
  complete: true,
  createdAt: '2026-12-07T09:00:00.000Z',
  rules: 'istio',
  mode: 'REDIRECT',
  relay: 'native',
  dns: { ns: 'slt-x-dns', address: '198.18.0.53', dnsmasq: { pid: 40, alive: true, uid: 0 }, capture: 'off' },
  pods: [
    {
      name: 'productpage',
      ns: 'slt-x-productpage',
      nsMissing: false,
      ip: '198.18.0.10',
      ip6: '2001:2::10',
      app: { pid: 11, alive: true, uid: 1000 },
      sidecar: { pid: 12, alive: true, uid: 1337 },
      hasSidecar: true,
      counters: {
        listeners: {
          virtualInbound: { port: 15006, cxTotal: 0, cxActive: 0, overflow: 0, noFilterChainMatch: 0 },
          virtualOutbound: { port: 15001, cxTotal: 4, cxActive: 1, overflow: 0, noFilterChainMatch: 0 },
        },
        clusters: { PassthroughCluster: { cxTotal: 4, cxActive: 1, connectFail: 0, connectTimeout: 0, rxBytes: 10, txBytes: 20 } },
      },
      relay: 'native',
      rules: [...idle, rule('nat', 4, '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001')],
    },
    {
      name: 'reviews',
      ns: 'slt-x-reviews',
      nsMissing: false,
      ip: '198.18.0.20',
      ip6: '2001:2::20',
      app: { pid: 21, alive: true, uid: 1000 },
      sidecar: { pid: 22, alive: false, uid: null },
      hasSidecar: true,
      counters: null,
      relay: null,
      rules: idle,
    },
    {
      name: 'ratings',
      ns: 'slt-x-ratings',
      nsMissing: true,
      ip: '198.18.0.30',
      ip6: '2001:2::30',
      app: null,
      sidecar: null,
      hasSidecar: false,
    },
  ],
}

t.test('short: pods, sidecars and only the rules that caught packets, one line each', async (t) => {
  const text = renderShortStatus(status, Infinity) // content; the width has its own test below
  const lines = text.trimEnd().split('\n')
  t.ok(lines.length <= 20, `${lines.length} lines, not one per counter`)
  t.match(text, /^lab slt-x: up since 2026-12-07T09:00:00\.000Z, rules: istio, mode: REDIRECT, relay: native\n/)
  t.match(text, /\nproductpage +slt-x-productpage +198\.18\.0\.10 +2001:2::10 +11 \(uid 1000\) +12 \(uid 1337\)\n/)
  t.match(text, /\nreviews +.* 22 \(exited\)\n/)
  t.match(text, /\nratings +slt-x-ratings \(missing\) +198\.18\.0\.30 +2001:2::30 +- +none\n/)
  t.match(text, /\ndns: slt-x-dns 198\.18\.0\.53, dnsmasq pid 40 \(uid 0\); DNS capture in the sidecar pods: off\n/)
  t.match(text, '\nproductpage: sidecar (native relay) listening on 15001 (4 connections, 1 active), 15006 (0 connections, 0 active)\n')
  t.match(text, '\nproductpage: capture rules (packets caught; 42 more caught none)\n         4  nat        -A ISTIO_REDIRECT')
  t.match(text, '\nreviews: sidecar admin port not answering\nreviews: capture rules (packets caught; 42 more caught none)\n  none yet\n')
  t.notMatch(text, /--dport 100\d/, 'no rule that caught nothing')
  t.notMatch(text, /PassthroughCluster/, 'cluster counters only with --verbose')
  t.match(text, /lab status --verbose/)
})

t.test('--verbose: every rule of both families and the cluster counters', async (t) => {
  const text = renderVerboseStatus(status, Infinity)
  t.equal(text.match(/--dport 100\d/g)?.length, 2 * idle.length)
  t.match(text, 'PassthroughCluster: 4 upstream connections, 1 active, 0 failed, 10 bytes in, 20 bytes out')
  t.match(text, /reviews: sidecar counters[^\n]*\n {2}sidecar admin port not answering/)
  t.match(text, '\nproductpage: sidecar counters (native relay, admin 127.0.0.1:15000 in the pod)\n', 'the engine the sidecar reports')
})

t.test('a lab that is down says how to build it, in both forms', async (t) => {
  for (const render of [renderShortStatus, renderVerboseStatus])
    t.equal(
      render({ lab: 'slt-y', up: false }),
      "lab slt-y is down (no state in /run/sidecar-lab/slt-y); 'sidecar-lab lab up --lab slt-y' builds it\n",
    )
})

t.test(
  'both forms fit the width (the pod table aside: its columns stay aligned); a long rule continues under the rule, not under the counter',
  async (t) => {
    const long = rule(
      'mangle',
      9,
      '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0/0 --tproxy-mark 0x539/0xffffffff',
    )
    const wide: LabStatus = { ...status, pods: status.up ? [{ ...status.pods[0]!, rules: [long] }] : [] }
    for (const text of [renderShortStatus(wide, 80), renderVerboseStatus(wide, 80)]) {
      t.same(
        text.split('\n').filter((l) => l.length > 80 && !/^(POD|productpage) /.test(l)),
        [],
      )
      t.match(text, /\n {9}9 {2}mangle {5}-A ISTIO_TPROXY [^\n]*\n {23}\S/)
    }
  },
)
