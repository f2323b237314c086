// @ts-check
// The soak's verdict and its table (text for the console, Markdown for soak.md). The checks, each of which
// fails the run:
//   bytes       every bulk stream came back whole and equal (sha256), and at least one stream completed
//   errors      no failure the soak did not cause: every short-connection, bulk, idle and autocannon failure
//               counts; a failure of a request to the lab's app counts unless it started while the soak had
//               that app killed (from the kill until 2 s after the restarted app listens)
//   idle        every held connection stayed open to the end
//   rss, fds    no upward trend after warm-up: the first third of the samples is warm-up; the median of the
//               last third may exceed the median of the second third by at most 10 % + 5 MiB (RSS) or by
//               max(10, 5 %) descriptors; medians, so a GC pause or a burst of connections is not a trend
//   fds back    once the load has stopped, each sidecar holds at most 4 more descriptors than before it began
//   alive       both sidecars ran to the end, and the soak's own parts reported no problem

/** @typedef {{ rssMiB: number, fds: number, loopMaxMs: number, loopP99Ms: number, loopPeakMs: number }} SidecarSample */
/** @typedef {{ t: number, outbound?: SidecarSample, inbound?: SidecarSample }} Sample */
/** @typedef {{ name: string, ok: boolean, detail: string }} Check */

const sides = /** @type {const} */ (['outbound', 'inbound'])
const podOf = { outbound: 'productpage', inbound: 'reviews' }
const causedGraceS = 2

/** @param {number[]} xs */
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2
}

/** Medians of the second and last thirds of a series. @param {number[]} xs */
export function thirds(xs) {
  const n = Math.floor(xs.length / 3)
  return { second: median(xs.slice(n, 2 * n)), last: median(xs.slice(xs.length - n)) }
}

/** @param {any} r the soak's result */
export function classifyErrors(r) {
  /** @param {{ workload: string, at: number }} e */
  const caused = (e) =>
    e.workload === 'peer' && r.kills.some((/** @type {any} */ k) => e.at >= k.killedAt && e.at <= k.readyAt + causedGraceS)
  return { caused: r.errors.filter(caused), unexplained: r.errors.filter((/** @type {any} */ e) => !caused(e)) }
}

/** @param {any} r @returns {Check[]} */
export function checks(r) {
  const c = r.client
  const { caused, unexplained } = classifyErrors(r)
  /** @type {Check[]} */
  const out = []
  out.push({
    name: 'bytes',
    ok: !!c && c.bulk.mismatches === 0 && c.bulk.streams > 0,
    detail: c
      ? `${c.bulk.streams} bulk streams, ${(c.bulk.bytes / 1e9).toFixed(2)} GB checked, ${c.bulk.mismatches} differed`
      : 'no client report',
  })
  const cannonFailures = r.cannon.errors + r.cannon.non2xx
  const codes = [...new Set(unexplained.map((/** @type {any} */ e) => `${e.workload}:${e.code}`))].slice(0, 5).join(', ')
  out.push({
    name: 'errors',
    ok: unexplained.length === 0 && cannonFailures === 0,
    detail: `${unexplained.length} unexplained${codes ? ` (${codes})` : ''}, ${cannonFailures} autocannon errors/non-2xx; ${caused.length} caused by ${r.kills.length} peer kills`,
  })
  out.push({
    name: 'idle',
    ok: !!c && c.idle.closedEarly === 0 && c.idle.openAtEnd === c.idle.wanted,
    detail: c ? `${c.idle.openAtEnd} of ${c.idle.wanted} open at the end, ${c.idle.closedEarly} closed early` : 'no client report',
  })
  for (const side of sides) {
    const rss = thirds(r.samples.map((/** @type {Sample} */ s) => s[side]?.rssMiB ?? NaN))
    const rssLimit = rss.second * 1.1 + 5
    out.push({
      name: `rss ${side}`,
      ok: rss.last <= rssLimit,
      detail: `median ${rss.second.toFixed(1)} -> ${rss.last.toFixed(1)} MiB (limit ${rssLimit.toFixed(1)})`,
    })
    const fds = thirds(r.samples.map((/** @type {Sample} */ s) => s[side]?.fds ?? NaN))
    const fdLimit = fds.second + Math.max(10, fds.second * 0.05)
    out.push({ name: `fds ${side}`, ok: fds.last <= fdLimit, detail: `median ${fds.second} -> ${fds.last} (limit ${fdLimit.toFixed(0)})` })
    const before = r.baselineFds[podOf[side]]
    const after = r.endFds[podOf[side]]
    out.push({ name: `fds back ${side}`, ok: after <= before + 4, detail: `${before} before the load, ${after} after it` })
  }
  out.push({
    name: 'alive',
    ok: r.problems.length === 0,
    detail: r.problems.length ? r.problems.join('; ') : 'both sidecars up to the end',
  })
  return out
}

/** The figures of the table, as rows of cells. @param {any} r */
function figures(r) {
  const first = r.samples[0] ?? {}
  const last = r.samples[r.samples.length - 1] ?? {}
  const f1 = (/** @type {number} */ x) => (Number.isFinite(x) ? x.toFixed(1) : '-')
  const per = (/** @type {(s: 'outbound' | 'inbound') => string} */ fn) => sides.map(fn)
  const cx = (/** @type {'outbound' | 'inbound'} */ side) => {
    const stats = r.counters[podOf[side]] ?? {}
    const port = side === 'outbound' ? 15001 : 15006
    const key = Object.keys(stats).find((k) => k.startsWith('listener.') && k.endsWith(`_${port}.downstream_cx_total`))
    return key ? String(stats[key]) : '-'
  }
  const sidecarRows = [
    ['RSS at start / end (MiB)', ...per((s) => `${f1(first[s]?.rssMiB)} / ${f1(last[s]?.rssMiB)}`)],
    [
      'RSS median, 2nd / last third (MiB)',
      ...per((s) => {
        const m = thirds(r.samples.map((/** @type {Sample} */ x) => x[s]?.rssMiB ?? NaN))
        return `${f1(m.second)} / ${f1(m.last)}`
      }),
    ],
    ['fds at start / end of load', ...per((s) => `${first[s]?.fds ?? '-'} / ${last[s]?.fds ?? '-'}`)],
    ['fds before / after the load', ...per((s) => `${r.baselineFds[podOf[s]] ?? '-'} / ${r.endFds[podOf[s]] ?? '-'}`)],
    [
      'event-loop delay, median of 5 s p99 (ms)',
      ...per((s) => f1(median(r.samples.map((/** @type {Sample} */ x) => x[s]?.loopP99Ms ?? NaN)))),
    ],
    ['event-loop delay, worst (ms)', ...per((s) => f1(Math.max(...r.samples.map((/** @type {Sample} */ x) => x[s]?.loopPeakMs ?? 0))))],
    ['connections accepted', ...per(cx)],
  ]
  const c = r.client
  const { caused, unexplained } = classifyErrors(r)
  const of = (/** @type {string} */ w) =>
    `${caused.filter((/** @type {any} */ e) => e.workload === w).length} / ${unexplained.filter((/** @type {any} */ e) => e.workload === w).length}`
  const workloadRows = c
    ? [
        ['short connections (HTTP, Connection: close)', String(c.short.ok + c.short.errors), '-', of('short')],
        ['bulk streams echoed, sha256 checked', String(c.bulk.streams), `${(c.bulk.bytes / 1e9).toFixed(2)} GB`, of('bulk')],
        ['idle connections held', String(c.idle.wanted), '-', of('idle')],
        ["requests to the lab's app (killed and restarted)", String(c.peer.ok + c.peer.errors), '-', of('peer')],
        ['autocannon keep-alive requests', String(r.cannon.requests), '-', `0 / ${r.cannon.errors + r.cannon.non2xx}`],
      ]
    : []
  return { sidecarRows, workloadRows }
}

/** @param {any} r */
function heading(r) {
  return `${r.loadSeconds} s of load through both sidecars (${r.relay ?? 'node'} relay, lab ${r.lab}), ${r.samples.length} samples every ${r.sampleMs / 1000} s, ${r.kills.length} peer kills; ${r.machine.nproc} cores, Node ${r.machine.node}, load average at end ${r.loadAverageAtEnd.join(' ')}`
}

/** @param {any} r @param {Check[]} verdict */
export function renderSoakText(r, verdict) {
  const { sidecarRows, workloadRows } = figures(r)
  const pad = (/** @type {string[][]} */ rows) => {
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? []
    return rows
      .map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('   '))
      .join('\n')
  }
  return [
    `soak: ${heading(r)}`,
    '',
    pad([['', 'outbound', 'inbound'], ...sidecarRows]),
    '',
    pad([['workload', 'connections', 'bytes checked', 'errors caused / unexplained'], ...workloadRows]),
    '',
    ...verdict.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
    '',
  ].join('\n')
}

/** @param {any} r @param {Check[]} verdict */
export function renderSoakMarkdown(r, verdict) {
  const { sidecarRows, workloadRows } = figures(r)
  // figures right-aligned, words (the checks' table) left
  const table = (/** @type {string[]} */ head, /** @type {string[][]} */ rows, numeric = true) =>
    [
      `| ${head.join(' | ')} |`,
      `|${head.map((_, i) => (i && numeric ? '--:' : '---')).join('|')}|`,
      ...rows.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n')
  return [
    `# Soak, ${r.startedAt}`,
    '',
    heading(r) + '.',
    '',
    table(['each sidecar', 'outbound (productpage)', 'inbound (reviews)'], sidecarRows),
    '',
    table(['workload', 'connections', 'bytes checked', 'errors caused / unexplained'], workloadRows),
    '',
    table(
      ['check', 'result', 'detail'],
      verdict.map((c) => [c.name, c.ok ? 'ok' : '**FAIL**', c.detail]),
      false,
    ),
    '',
    '![RSS, descriptors and event-loop delay over time](soak.svg)',
    '',
  ].join('\n')
}
