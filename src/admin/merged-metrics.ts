// The agent's merged metrics (15020): the proxy's Prometheus text followed by the app's own, as Istio's
// pilot-agent serves them so one scrape per pod is enough. An app that cannot be scraped is counted and
// logged, never an error for the scrape: the proxy's metrics still matter then.
import type { Logger } from '../logger.js'
import type { Stats } from '../stats/stats.js'
import { prometheusContentType } from './prometheus.js'
import { prometheusResponse } from './stats-endpoints.js'
import { readMethods, refuseMethod, text, type AdminRequest, type AdminResponse } from './router.js'

export interface MergedMetricsOptions {
  appMetricsUrl: string | null
  /** how long the app may take to answer */
  timeoutMs?: number
  /** the agent's own metrics (istio_agent_dns_*), served between the proxy's and the app's */
  agentMetrics?: () => string
}

export class MergedMetrics {
  readonly #stats: Stats
  readonly #options: MergedMetricsOptions
  readonly #log: Logger
  #scrapes = 0
  #appFailures = 0

  constructor(stats: Stats, options: MergedMetricsOptions, log: Logger) {
    this.#stats = stats
    this.#options = options
    this.#log = log
  }

  handler(): (req: AdminRequest) => Promise<AdminResponse> {
    return async (req) => {
      if (req.path !== '/stats/prometheus' && req.path !== '/metrics') return text('not found\n', 404)
      return refuseMethod(req, readMethods) ?? this.scrape(req.query)
    }
  }

  async scrape(query: URLSearchParams = new URLSearchParams()): Promise<AdminResponse> {
    this.#scrapes++
    const proxy = prometheusResponse(this.#stats, query)
    if (proxy.status !== 200) return proxy
    const app = await this.#app()
    const agent =
      [
        '# TYPE istio_agent_scrapes_total counter',
        `istio_agent_scrapes_total ${this.#scrapes}`,
        '# TYPE istio_agent_scrape_failures_total counter',
        `istio_agent_scrape_failures_total{type="application"} ${this.#appFailures}`,
        '',
      ].join('\n') + (this.#options.agentMetrics?.() ?? '')
    return { status: 200, body: proxy.body + agent + app, contentType: prometheusContentType }
  }

  async #app(): Promise<string> {
    const url = this.#options.appMetricsUrl
    if (!url) return ''
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.#options.timeoutMs ?? 5000) })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const body = await res.text()
      return body === '' || body.endsWith('\n') ? body : body + '\n'
    } catch (err) {
      this.#appFailures++
      this.#log.warn({ err, url }, "app metrics unreachable; serving the proxy's alone")
      // A comment is ignored by scrapers but tells a person reading the page what is missing.
      return `# app metrics from ${url} unavailable: ${(err as Error).message.replace(/\n/g, ' ')}\n`
    }
  }
}
