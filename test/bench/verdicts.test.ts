// What a run may conclude: a quick run prints that it is a smoke test and no goal verdicts; a memory slope is
// given over at least 1000 idle connections and only when RSS grew, else a line says why there is none.
import t from 'tap'

interface Verdict {
  id: string
  text: string
  value?: number
  reference?: number
  ratio?: number
  met: boolean | null
  note: string
}
const v = (await import('../../bench/verdicts.mjs' as string)) as {
  memorySlope(loMB: number | undefined, hiMB: number | undefined, lo: number, hi: number): { kb: number } | { why: string }
  memoryFigures(m: Record<string, number>, idle: number[]): { metrics: Record<string, number>; notes: string[] }
  verdictLines(result: { method: { quick: boolean }; goals?: Verdict[] }, o: { nbthread: number }): string[]
}

t.test("a quick run: the smoke test's line, no met or MISSED", async (t) => {
  const goals: Verdict[] = [
    { id: 'memory', text: 'memory per idle proxied connection', value: -7.9, reference: 30, ratio: -0.26, met: true, note: '' },
  ]
  const quick = v.verdictLines({ method: { quick: true }, goals }, { nbthread: 2 })
  t.equal(quick.length, 1)
  t.match(quick[0], /^bench: a quick run is a smoke test .*no verdicts/)
  t.notMatch(quick.join('\n'), /\bmet\b|MISSED/)
  const full = v.verdictLines({ method: { quick: false }, goals }, { nbthread: 2 })
  t.match(full.join('\n'), /met {4}memory per idle proxied connection/, 'a full run gives its verdicts')
})

t.test('memory per connection: only over enough connections, only when RSS grew', async (t) => {
  t.same(v.memorySlope(40, 80, 0, 10_000), { kb: 4.096 })
  t.match(v.memorySlope(40, 41, 0, 100), { why: /^100 idle connections are too few for a slope .*at least 1000\)$/ })
  t.match(v.memorySlope(80, 40, 0, 10_000), { why: /^RSS fell from 80\.0 to 40\.0 MB \(0 to 10000 connections\)/ })
  const quick = v.memoryFigures({ 'rssOutMB@0': 50, 'rssOutMB@100': 49.2, 'rssInMB@0': 50, 'rssInMB@100': 50.1 }, [0, 10, 100])
  t.same(quick.metrics, {}, 'no kbPerConn figure from a quick run')
  t.same(
    quick.notes.map((n) => n.split(':')[0]),
    ["outbound sidecar's memory per connection not given", "inbound sidecar's memory per connection not given"],
  )
  const full = v.memoryFigures({ 'rssOutMB@0': 50, 'rssOutMB@10000': 90, 'rssInMB@0': 50, 'rssInMB@10000': 45 }, [0, 1000, 10_000])
  t.same(Object.keys(full.metrics), ['kbPerConnOut'])
  t.match(full.notes, [/^inbound sidecar's memory per connection not given: RSS fell/])
})

t.test("ambient: the ztunnel's memory per connection (one process for both pods), no sidecar lines", async (t) => {
  const full = v.memoryFigures({ 'rssZtunnelMB@0': 40, 'rssZtunnelMB@10000': 80 }, [0, 1000, 10_000])
  t.same(full, { metrics: { kbPerConnZtunnel: 4.096 }, notes: [] })
  const quick = v.memoryFigures({ 'rssZtunnelMB@0': 40, 'rssZtunnelMB@100': 40.5 }, [0, 10, 100])
  t.same(quick.metrics, {})
  t.match(quick.notes, [/^ztunnel's \(both pods\) memory per connection not given: 100 idle connections are too few/])
})
