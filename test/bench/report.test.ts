// The Markdown and SVG reports of a run with peers measured in the position both only (ambient's ztunnel,
// HAProxy's TLS pair): they appear in the both table and chart, not as empty columns in the one-sided tables,
// and the ztunnel's figures are named as its own (one process for both pods), not as a sidecar's.
import t from 'tap'

interface Sample {
  round: number
  peer: string
  position: string
  scenario: string
  metrics?: Record<string, number>
}
const md = (await import('../../bench/report-md.mjs' as string)) as {
  renderMarkdown(r: unknown): string
  mainPeers: string[]
}
const svg = (await import('../../bench/report-svg.mjs' as string)) as { renderSvg(r: unknown): string }
const stats = (await import('../../bench/stats.mjs' as string)) as {
  summarise(s: Sample[]): unknown
  describe(metric: string): { label: string; unit: string }
}

const sample = (peer: string, position: string, scenario: string, metrics: Record<string, number>): Sample => ({
  round: 1,
  peer,
  position,
  scenario,
  metrics,
})

function result(samples: Sample[]) {
  return {
    startedAt: '2026-12-07T16:00:00.000Z',
    seconds: 60,
    machine: { nproc: 2, cpu: 'test CPU', memoryGiB: 24, kernel: '6.18', node: 'v20', haproxy: '2.6.12', fdLimit: 20000, commit: 'abc' },
    method: {
      quick: true,
      rounds: 1,
      sizes: { bulkSeconds: 1, httpSeconds: 1, fixedSeconds: 2, cpsSeconds: 1, idle: [0, 10, 100] },
      scenarios: [
        { id: 'bulk-1', title: 'bulk TCP, 1 stream' },
        { id: 'fixed-1k', title: 'at 1000 requests/s' },
      ],
      peers: [
        { name: 'direct', label: 'direct' },
        { name: 'haproxy', label: 'HAProxy (nbthread 2)' },
        { name: 'haproxy-tls', label: 'HAProxy TLS (nbthread 2)' },
        { name: 'ambient', label: 'ambient (ztunnel)' },
      ],
    },
    samples,
    summary: stats.summarise(samples),
  }
}

const samples = [
  sample('direct', 'none', 'bulk-1', { MBps: 2000 }),
  sample('direct', 'none', 'fixed-1k', { rps: 1000, p50: 0.2, p90: 0.4, p99: 1 }),
  ...['both', 'outbound', 'inbound'].flatMap((pos) => [
    sample('haproxy', pos, 'bulk-1', {
      MBps: 600,
      ...(pos !== 'inbound' ? { cpuPerGBOut: 1 } : {}),
      ...(pos !== 'outbound' ? { cpuPerGBIn: 0.8 } : {}),
    }),
  ]),
  sample('haproxy-tls', 'both', 'bulk-1', { MBps: 300, cpuPerGBOut: 2, cpuPerGBIn: 1.9 }),
  sample('ambient', 'both', 'bulk-1', { MBps: 400, cpuPerGBZtunnel: 3.1 }),
  sample('ambient', 'both', 'fixed-1k', { rps: 1000, p50: 0.5, p90: 0.7, p99: 2, cpuPer1kReqZtunnel: 0.1, vcpuZtunnel: 0.1 }),
]

/** The rows of the Markdown table under the heading that starts with `heading`. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.startsWith(`## ${heading}`))
  if (start < 0) return []
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '))
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l.startsWith('|'))
}

t.test('peers measured in both only: columns in the both table, none in the one-sided tables', async (t) => {
  t.ok(md.mainPeers.includes('ambient') && md.mainPeers.includes('haproxy-tls'), 'both are main peers')
  const text = md.renderMarkdown(result(samples))
  const both = section(text, 'Both sidecars')
  t.match(both[0], /\| direct \| HAProxy \(nbthread 2\) \| HAProxy TLS \(nbthread 2\) \| ambient \(ztunnel\) \|/, 'both: every peer')
  t.match(both.join('\n'), /\| bulk-1 \| throughput \(MB\/s\) \| 2,000 \| 600 \| 300 \| 400 \|/)
  for (const heading of ['Outbound sidecar only', 'Inbound sidecar only']) {
    const rows = section(text, heading)
    t.ok(rows.length > 2, `${heading}: a table`)
    t.notMatch(rows[0], /ambient|TLS/, `${heading}: no column for a peer measured in both only`)
    t.match(rows[0], /HAProxy \(nbthread 2\)/)
  }
  t.match(text, /ambient \(ztunnel\).*position both only: one ztunnel serves both pods/, 'the report says why')
})

t.test("the ztunnel's figures are named as one process for both pods, not a sidecar", async (t) => {
  for (const metric of [
    'cpuPerGBZtunnel',
    'cpuPer1kReqZtunnel',
    'vcpuZtunnel',
    'cpuPer1kConnZtunnel',
    'kbPerConnZtunnel',
    'rssZtunnelMB@100',
  ]) {
    const d = stats.describe(metric)
    t.match(d.label, /^(RSS of the )?ztunnel \(one process, both pods\)/, metric)
    t.notMatch(d.label, /sidecar/, metric)
    t.not(d.unit, '', `${metric} has a unit`)
  }
  const both = section(md.renderMarkdown(result(samples)), 'Both sidecars').join('\n')
  t.match(both, /\| bulk-1 \| ztunnel \(one process, both pods\) CPU per GB moved \(CPU s\) \| — \| — \| — \| 3\.10 \|/)
})

t.test('the chart has bars and a legend entry for both peers, and the ztunnel in its own rows', async (t) => {
  const chart = svg.renderSvg(result(samples))
  t.match(chart, />ambient \(ztunnel\)</, 'legend: ambient')
  t.match(chart, />HAProxy TLS \(nbthread 2\)</, 'legend: the TLS pair')
  t.match(chart, /ztunnel \(both pods\), CPU s per GB, 1 stream|ztunnel \(both pods\), CPU ms\/1000 req at 1k\/s/, 'a ztunnel row')
  t.match(chart, />0\.20x \(400 MB\/s\)</, "ambient's throughput bar, relative to direct")
  t.notMatch(chart, /fill="#000"/, 'every peer has its colour')
})

t.test('a run of direct and both-only peers: no empty one-sided tables', async (t) => {
  const text = md.renderMarkdown(result(samples.filter((s) => s.peer !== 'haproxy')))
  t.ok(section(text, 'Both sidecars').length > 2, 'the both table')
  t.notMatch(text, /## Outbound sidecar only|## Inbound sidecar only/, 'no table of direct alone')
})
