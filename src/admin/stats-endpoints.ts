// /stats (text, ?format=json|prometheus, ?filter=REGEX, ?usedonly), /stats/prometheus and /reset_counters.
import type { Stats } from '../stats/stats.js'
import { prometheusContentType, renderPrometheus } from './prometheus.js'
import { InvalidStatsFilterError } from '../errors.js'
import { compileFilter, maxFilterLength } from './stats-filter.js'
import { flag, json, readMethods, refuseMethod, text, type AdminRequest, type AdminResponse, type AdminRoute } from './router.js'
import { renderJson, renderText, select, type Selection } from './stats-render.js'

const filterParam = { name: 'filter', help: `Regular expression (Google re2) for filtering stats, at most ${maxFilterLength} characters` }
const usedOnlyParam = { name: 'usedonly', help: 'Only include stats that have been written by system since restart' }

/** The selection a request asks for, or the 400 Envoy answers for a regex it cannot compile. */
export function selection(query: URLSearchParams): Selection | AdminResponse {
  const usedOnly = flag(query, 'usedonly')
  const filter = query.get('filter')
  if (!filter) return { usedOnly }
  try {
    return { usedOnly, filter: compileFilter(filter) }
  } catch (err) {
    if (err instanceof InvalidStatsFilterError) return text(`Invalid re2 regex: ${err.message}\n`, 400)
    throw err
  }
}

export function prometheusResponse(stats: Stats, query: URLSearchParams): AdminResponse {
  const sel = selection(query)
  if ('status' in sel) return sel
  return { status: 200, body: renderPrometheus(select(stats, sel)), contentType: prometheusContentType }
}

/** 15090: Envoy's /stats/prometheus alone, for Prometheus from anywhere; GET and HEAD only. */
export function prometheusHandler(stats: Stats): (req: AdminRequest) => Promise<AdminResponse> {
  return async (req) => {
    if (req.path !== '/stats/prometheus') return text('not found\n', 404)
    return refuseMethod(req, readMethods) ?? prometheusResponse(stats, req.query)
  }
}

export function statsRoutes(stats: Stats): AdminRoute[] {
  return [
    {
      path: '/stats',
      help: 'print server stats',
      params: [usedOnlyParam, filterParam, { name: 'format', help: 'Format to use', choices: ['text', 'json', 'prometheus'] }],
      handle(req: AdminRequest) {
        const format = req.query.get('format') ?? 'text'
        if (format === 'prometheus') return prometheusResponse(stats, req.query)
        const sel = selection(req.query)
        if ('status' in sel) return sel
        if (format === 'json') return json(renderJson(select(stats, sel)))
        if (format === 'text') return text(renderText(select(stats, sel)))
        return text(`usage: /stats?format=(text|json|prometheus)\n\nbad format: ${format}\n`, 404)
      },
    },
    {
      path: '/stats/prometheus',
      help: 'print server stats in prometheus format',
      params: [usedOnlyParam, filterParam],
      handle: (req) => prometheusResponse(stats, req.query),
    },
    {
      path: '/reset_counters',
      help: 'reset all counters to zero',
      mutates: true,
      handle() {
        stats.resetCounters()
        return text('OK\n')
      },
    },
  ]
}
