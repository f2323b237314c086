// The walkthrough's 15 steps against real runs' captures: every step covered, every trace step assigned,
// corrections that cite their evidence, and --json in its documented shape (docs/walkthrough.schema.json).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv } from 'ajv'
import t from 'tap'
import { renderWalkthroughJson, renderWalkthroughText } from '../../../src/trace/walkthrough/render.js'
import { renderWalkthroughSvg } from '../../../src/trace/walkthrough/render-svg.js'
import { hops } from '../../../src/trace/render/hops.js'
import { renderText } from '../../../src/trace/render/text.js'
import { walkthrough } from '../../../src/trace/walkthrough/verdicts.js'
import { fixtureReport } from '../fixture.js'

const schema = JSON.parse(readFileSync(fileURLToPath(new URL('../../../docs/walkthrough.schema.json', import.meta.url)), 'utf8')) as object

t.test('all 15 walkthrough steps, in order, and every step of both real traces assigned to one', async (t) => {
  for (const set of ['trace', 'trace-call'] as const) {
    const report = fixtureReport(set)
    const w = walkthrough(report)
    t.same(
      w.steps.map((s) => s.n),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      `${set}: 15 steps`,
    )
    t.same(w.unassigned, [], `${set}: no trace step unassigned`)
    t.equal(w.assignment.length, report.steps.length)
    t.same(
      w.steps.flatMap((s) => s.hops).sort((a, b) => a - b),
      report.steps.map((s) => s.n),
      `${set}: each trace step under exactly one walkthrough step`,
    )
  }
})

t.test('the trace with reviews -> ratings: which trace steps belong to which walkthrough step', async (t) => {
  const w = walkthrough(fixtureReport('trace-call'))
  t.same(Object.fromEntries(w.steps.map((s) => [s.n, s.hops])), {
    1: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    2: [11],
    3: [12],
    4: [13],
    5: [16],
    6: [17],
    7: [18, 19],
    8: [20],
    9: [21, 22],
    10: [23],
    11: [24],
    12: [25, 26, 27, 28],
    13: [14, 15, 29],
    14: [30],
    15: [31, 32, 33],
  })
})

t.test('verdicts: 1-6 and 8 confirmed, 7 corrected; 9-15 corrected as written, the outbound call as meant', async (t) => {
  const w = walkthrough(fixtureReport('trace-call'))
  t.same(
    w.steps.map((s) => s.verdict),
    [
      'confirmed',
      'confirmed',
      'confirmed',
      'confirmed',
      'confirmed',
      'confirmed',
      'corrected',
      'confirmed',
      'corrected',
      'corrected',
      'corrected',
      'corrected',
      'corrected',
      'corrected',
      'corrected',
    ],
  )
  t.same(
    w.steps.slice(8).map((s) => s.meant?.verdict),
    ['confirmed', 'confirmed', 'corrected', 'confirmed', 'confirmed', 'confirmed', 'confirmed'],
  )
  const w7 = w.steps[6]!
  t.match(w7.finding, /198\.18\.0\.20:9080, the pod's own address, not localhost/)
  t.same(
    w7.evidence.map((e) => [e.step, e.rule]),
    [
      [18, '-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN'],
      [19, 'policy accept'],
    ],
  )
  const w11 = w.steps[10]!.meant!
  t.same(
    w11.evidence.map((e) => [e.step, e.rule, e.connection.role]),
    [
      [24, '-A ISTIO_OUTPUT -j ISTIO_REDIRECT', 'app'],
      [31, '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN', 'outbound sidecar'],
    ],
  )
  t.same(
    w.steps[11]!.meant!.evidence[0]!.rewritten,
    { src: '198.18.0.20:51500', dst: '127.0.0.1:15001' },
    "w12 as meant: reviews' call redirected to 15001",
  )
})

t.test('every corrected reading cites trace steps, and its reply evidence entered no nat chain', async (t) => {
  const report = fixtureReport('trace-call')
  const w = walkthrough(report)
  const readings = w.steps.flatMap((s) => [s, ...(s.meant ? [s.meant] : [])])
  for (const r of readings.filter((x) => x.verdict === 'corrected')) {
    t.ok(r.evidence.length > 0, `evidence for: ${r.finding.slice(0, 60)}`)
    for (const e of r.evidence)
      t.ok(
        report.steps.some((s) => s.n === e.step && s.pod === e.pod),
        `step ${e.step} is a real trace step`,
      )
  }
  for (const s of w.steps.slice(8)) {
    t.ok(
      s.evidence.every((e) => e.packet.flags.includes('ack') && e.chain === null),
      `w${s.n} as written: the cited replies had no nat chain`,
    )
  }
})

t.test('the verdict follows the evidence: a reply that did enter nat OUTPUT would confirm step 9', async (t) => {
  const report = fixtureReport('trace-call')
  const reply = report.steps.find((s) => s.n === 21)!
  Object.assign(reply, { table: 'ip nat', chain: 'OUTPUT', rule: 'jump ISTIO_OUTPUT', verdict: 'jump ISTIO_OUTPUT' })
  t.equal(walkthrough(report).steps[8]!.verdict, 'confirmed')
})

t.test("without the called pod's own call (the older trace), 9-15 as meant are not observable and say why", async (t) => {
  const w = walkthrough(fixtureReport('trace'))
  for (const s of w.steps.slice(8)) {
    t.equal(s.meant?.verdict, 'not observable')
    t.match(s.meant?.finding, /outbound call from reviews/)
  }
  t.equal(w.steps[8]!.verdict, 'corrected', 'the reply is still shown not captured')
})

t.test('--json matches docs/walkthrough.schema.json; text and svg carry all 15 steps', async (t) => {
  const w = walkthrough(fixtureReport('trace-call'))
  const ajv = new Ajv({ allErrors: true })
  const validate = ajv.compile(schema)
  const json = JSON.parse(renderWalkthroughJson(w)) as unknown
  t.ok(validate(json), JSON.stringify(validate.errors))
  const broken = JSON.parse(renderWalkthroughJson(w)) as { steps: Array<Record<string, unknown>> }
  broken.steps[3]!.verdict = 'probably'
  t.notOk(validate(broken), 'a verdict outside the three is rejected')
  const text = renderWalkthroughText(w)
  for (let n = 1; n <= 15; n++) t.match(text, new RegExp(`\\n w${n} +"`))
  t.match(text, /unassigned: none/)
  t.match(text, /Q: Step 16.*\nA: No loop\./)
  const svg = renderWalkthroughSvg(w)
  t.equal(svg.match(/>w\d+</g)?.length, 15)
  t.equal(svg.match(/<text /g)?.length, svg.match(/<\/text>/g)?.length)
})

t.test('the normal trace text tags each numbered step with its walkthrough step', async (t) => {
  const text = renderText(fixtureReport('trace-call'))
  const tags = [...text.matchAll(/\n *(\d+)\. \[w(\d+)\]/g)].map((m) => [Number(m[1]), Number(m[2])])
  t.equal(tags.length, 33)
  t.same(
    tags.find(([n]) => n === 13),
    [13, 4],
  )
  t.same(
    tags.find(([n]) => n === 31),
    [31, 15],
  )
})

t.test("the diagram's hops carry their walkthrough steps too", async (t) => {
  const h = hops(fixtureReport('trace-call'))
  const of = (label: string) => h.find((x) => x.label === label)?.walk
  t.same([of('1-3'), of('11-13'), of('17-19'), of('23-25'), of('29'), of('30-32')], ['w1', 'w2-4', 'w6-7', 'w10-12', 'w13', 'w14-15'])
  t.ok(
    h.every((x) => /^w\d/.test(x.walk)),
    'every hop has one',
  )
})

t.test('a caller without a sidecar (ratings -> productpage): its connection is the one answered in w13-15', async (t) => {
  const w = walkthrough(fixtureReport('trace-nosidecar'))
  t.same(w.unassigned, [])
  t.same(
    w.steps.slice(12).map((s) => s.verdict),
    ['corrected', 'corrected', 'corrected'],
    "the inbound sidecar's answer is a reply here too",
  )
  t.ok(w.steps[12]!.evidence.every((e) => e.connection.role === 'app' && e.connection.pod === 'ratings' && e.chain === null))
  t.same(
    w.steps.slice(8).map((s) => s.meant?.verdict),
    ['confirmed', 'confirmed', 'corrected', 'confirmed', 'confirmed', 'confirmed', 'confirmed'],
    "productpage's own call to reviews",
  )
})
