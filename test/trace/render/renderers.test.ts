// The three renderers on a report from a real run.
import t from 'tap'
import { renderJson } from '../../../src/trace/render/json.js'
import { renderSvg, wrap } from '../../../src/trace/render/svg.js'
import { renderText } from '../../../src/trace/render/text.js'
import { hops } from '../../../src/trace/render/hops.js'
import { fixtureReport } from '../fixture.js'
import { renderWalkthroughText } from '../../../src/trace/walkthrough/render.js'
import { walkthrough } from '../../../src/trace/walkthrough/verdicts.js'
import { columnsOf, terminalWidth } from '../../../src/text/wrap.js'
import { PassThrough } from 'node:stream'

t.test('text: numbered steps with the iptables rule, the conntrack table and both answers', async (t) => {
  // unwrapped (Infinity columns): the lines' content, whatever the terminal's width
  const text = renderText(fixtureReport(), Infinity)
  t.match(text, /^trace: productpage -> reviews http:\/\/198\.18\.0\.20:9080\/ \(lab slt-dev\): HTTP 200/)
  t.match(
    text,
    /\n 3\. \[w1\] +productpage output ip nat ISTIO_REDIRECT .*-> accept\n\s+iptables: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n\s+rewritten: .* became 198\.18\.0\.10:35784 -> 127\.0\.0\.1:15001/,
  )
  t.match(text, /productpage sidecar: accepted 198\.18\.0\.10:35784/)
  t.match(text, /Q: Step 16.*\nA: No loop\./)
  t.match(text, /Q: Does the sidecar forward.*\nA: A new connection\./)
})

t.test('json: steps[] with pod, packet, hook, table, chain, rule, verdict; answers{}', async (t) => {
  const j = JSON.parse(renderJson(fixtureReport())) as { steps: Array<Record<string, unknown>>; answers: Record<string, unknown> }
  t.same(Object.keys(j.steps[0]!), [
    'n',
    'pod',
    'kind',
    'connection',
    'packet',
    'rewritten',
    'hook',
    'table',
    'chain',
    'rule',
    'iptables',
    'verdict',
    'note',
  ])
  t.same(j.steps[0]!.packet, { src: '198.18.0.10:35784', dst: '198.18.0.20:9080', flags: ['syn'] })
  t.same(Object.keys(j.answers), ['loop', 'newConnection'])
  t.notOk('raw' in j, 'the raw monitor text is not part of the JSON')
})

t.test('svg hops: who sent each packet and whose socket got it', async (t) => {
  const h = hops(fixtureReport())
  t.same(
    h.slice(0, 5).map((x) => [x.label, x.fromLane, x.toLane]),
    [
      ['1-3', 'productpage:app', 'productpage:netfilter'],
      ['4', 'productpage:netfilter', 'productpage:sidecar'],
      ['5', 'productpage:sidecar', 'productpage:netfilter'],
      ['6', 'productpage:netfilter', 'productpage:app'],
      ['7', 'productpage:sidecar', 'productpage:sidecar'],
    ],
  )
  const inbound = h.find((x) => x.label === '11-13')!
  t.same([inbound.wireFrom, inbound.toLane], ['productpage:netfilter', 'reviews:sidecar'])
  t.match(inbound.decision, /ISTIO_IN_REDIRECT: +-p tcp -j REDIRECT --to-ports 15006/)
  t.same(
    h.filter((x) => x.verdict === 'return').map((x) => x.label),
    ['8-10', '17-19'],
  )
})

t.test('svg: six lanes, a badge per hop, a legend, escaped text', async (t) => {
  const svg = renderSvg(fixtureReport())
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  for (const lane of ['pod productpage', 'pod reviews', '>netfilter<', '>sidecar<', '>app<', 'legend']) t.match(svg, lane)
  for (const label of ['1-3', '8-10', '11-13', '17-19']) t.match(svg, `>${label}<`)
  t.notMatch(svg.replace(/&(amp|lt|gt|quot);/g, ''), /&/, 'no unescaped ampersand')
  t.equal(svg.match(/<text /g)?.length, svg.match(/<\/text>/g)?.length, 'every text element closed')
  t.notMatch(svg.replace(/<[^>]*>/g, ''), /[<>]/, 'no raw < or > in the text content')
  t.same(wrap('a bb ccc dddd', 6), ['a bb', 'ccc', 'dddd'])
})

t.test('text and --walkthrough text fit 80 columns when not on a terminal, and a terminal sets the width', async (t) => {
  const report = fixtureReport('trace-call')
  const pipe = terminalWidth(new PassThrough())
  for (const [name, text] of [
    ['trace', renderText(report, pipe)],
    ['walkthrough', renderWalkthroughText(walkthrough(report), pipe)],
  ] as const) {
    t.same(
      text.split('\n').filter((l) => columnsOf(l) > 80),
      [],
      `${name}: no line wider than 80`,
    )
    t.match(text.replace(/\n +/g, ' '), report.answers.newConnection.answer, `${name}: the answer whole, wrapped`)
  }
  const tty = terminalWidth({ isTTY: true, columns: 120 })
  const wide = renderWalkthroughText(walkthrough(report), tty).split('\n')
  t.ok(wide.some((l) => l.length > 80) && wide.every((l) => columnsOf(l) <= 120), 'a 120-column terminal gets 120')
})
