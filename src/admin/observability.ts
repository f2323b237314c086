// Starts the sidecar's HTTP ports as Istio lays them out: Envoy's admin on 127.0.0.1 only (it can stop the
// proxy, so nothing outside the pod may reach it), health, Prometheus and merged metrics on the listeners'
// address for the kubelet and Prometheus. Port 0 leaves one out.
import type { Logger } from '../logger.js'
import { adminRouter } from './admin.js'
import { healthHandler } from './health.js'
import { serveHttp, type Handler, type HttpEndpoint } from './http.js'
import { MergedMetrics } from './merged-metrics.js'
import { prometheusHandler } from './stats-endpoints.js'
import type { AdminControl, AdminTarget } from './target.js'

export interface Observability {
  readonly endpoints: readonly HttpEndpoint[]
  close(): Promise<void>
}

export async function startObservability(target: AdminTarget, control: AdminControl, log: Logger): Promise<Observability> {
  const c = target.config
  const router = adminRouter(target, control)
  const merged = new MergedMetrics(
    target.stats,
    { appMetricsUrl: c.appMetricsUrl, agentMetrics: () => target.agentMetrics?.() ?? '' },
    log.child({ endpoint: 'merged-metrics' }),
  )
  const wanted: [string, string, number, Handler][] = [
    ['admin', '127.0.0.1', c.adminPort, (req) => router.dispatch(req)],
    ['health', c.bindAddress, c.healthPort, healthHandler(target)],
    ['prometheus', c.bindAddress, c.prometheusPort, prometheusHandler(target.stats)],
    ['merged metrics', c.bindAddress, c.mergedMetricsPort, merged.handler()],
  ]
  const endpoints: HttpEndpoint[] = []
  const close = async () => {
    await Promise.all(endpoints.map((e) => e.close()))
  }
  try {
    for (const [name, host, port, handler] of wanted) {
      if (port !== 0) endpoints.push(await serveHttp(name, host, port, handler, log))
    }
  } catch (err) {
    await close()
    throw err
  }
  log.info({ endpoints: endpoints.map((e) => `${e.name}:${e.port}`) }, 'observability endpoints listening')
  return { endpoints, close }
}
