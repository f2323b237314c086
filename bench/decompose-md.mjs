// @ts-check
// The decomposition as Markdown: each position's latency and CPU per request, then the parts (differences
// between neighbouring positions) with their share of the whole path.

/** @param {number} x */
const us = (x) => `${x >= 0 ? '' : '−'}${Math.abs(x).toFixed(0)}`

/** @param {any} r the result decompose.mjs writes */
export function renderDecomposeMd(r) {
  const total = r.parts.find((/** @type {any} */ p) => p.id === 'total')
  const share = (/** @type {number} */ x, /** @type {number} */ of) => (of > 0 ? `${Math.round((x / of) * 100)}%` : '-')
  const lines = [
    `Decomposition of one request through both pods (${r.method.rounds} rounds × ${r.method.secondsPerRun} s per position, medians; ` +
      `${r.machine.nproc} × ${r.machine.cpu}, commit ${r.machine.commit}, load at end ${r.loadAverageAtEnd.join(' ')}; ${r.startedAt}).`,
    `Client: ${r.method.client}. Sidecars: sidecar-lab with the ${r.method.relay ?? 'node'} relay` +
      (r.method.haproxy?.available
        ? `; HAProxy pair: HAProxy ${r.method.haproxy.version}, nbthread ${r.method.haproxy.nbthread}.`
        : r.method.haproxy
          ? `; no HAProxy pair (${r.method.haproxy.reason}).`
          : '.'),
    '',
    '| position | requests | mean µs | p50 µs (range) | p99 µs | CPU µs/req: client + server + sidecar out + in | CPU range over rounds |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.method.positions.map((/** @type {any} */ p) => {
      const s = r.summary[p.id]
      const c = s.cpuUs
      return (
        `| ${p.id}: ${p.title} | ${s.requests} | ${us(s.meanUs)} | ${us(s.p50Us)} (${us(s.p50UsRange[0])}-${us(s.p50UsRange[1])}) | ${us(s.p99Us)} | ` +
        `${us(c.total)} = ${us(c.client)} + ${us(c.server)} + ${us(c.sidecarOut)} + ${us(c.sidecarIn)} | ${us(s.cpuUsRange[0])}-${us(s.cpuUsRange[1])} |`
      )
    }),
    '',
    "| part of the path | latency added, mean µs | p50 µs | CPU µs/req | share of the path's CPU |",
    '|---|---:|---:|---:|---:|',
    ...r.parts.map(
      // HAProxy's row stands beside the parts, not among them: no share of the sidecars' path
      (/** @type {any} */ p) =>
        `| ${p.title} | ${us(p.meanUs)} | ${us(p.p50Us)} | ${us(p.cpuUs)} | ${p.id === 'haproxy' ? '-' : share(p.cpuUs, total.cpuUs)} |`,
    ),
    '',
  ]
  return lines.join('\n')
}
