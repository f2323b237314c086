// The ztunnel's ports, as istio/ztunnel lays them out: admin on 127.0.0.1:15000 (/config_dump with each pod's
// state and listeners, /stats with each pod's Envoy-style statistics, POST /quitquitquit), stats on
// [::]:15020 (/metrics, /stats/prometheus), readiness on [::]:15021 (/healthz/ready: 200 "ready", else 500
// naming what is pending).
import type { Logger } from '../logger.js'
import { serveHttp, type HttpEndpoint } from '../admin/http.js'
import { json, methodNotAllowed, text, type AdminRequest, type AdminResponse } from '../admin/router.js'
import type { Ztunnel } from './ztunnel.js'

export interface ZtunnelPorts {
  admin: number
  stats: number
  ready: number
}

export interface AdminHooks {
  /** what readiness waits for (the agent's snapshot); empty when ready */
  pending(): string[]
  quit(): void
}

export async function startZtunnelAdmin(z: Ztunnel, ports: ZtunnelPorts, hooks: AdminHooks, log: Logger): Promise<HttpEndpoint[]> {
  const endpoints: HttpEndpoint[] = []
  try {
    if (ports.admin) endpoints.push(await serveHttp('admin', '127.0.0.1', ports.admin, (r) => admin(z, hooks, r), log))
    if (ports.stats) endpoints.push(await serveHttp('stats', '::', ports.stats, (r) => metrics(z, r), log))
    if (ports.ready) endpoints.push(await serveHttp('readiness', '::', ports.ready, (r) => ready(hooks, r), log))
  } catch (err) {
    await Promise.all(endpoints.map((e) => e.close()))
    throw err
  }
  return endpoints
}

async function admin(z: Ztunnel, hooks: AdminHooks, r: AdminRequest): Promise<AdminResponse> {
  switch (r.path) {
    case '/config_dump':
      return json({ workloadState: workloadState(z) })
    case '/stats': {
      // ?pod=NAME: that pod's statistics under their own names (Envoy's, as a sidecar in the pod would count
      // them); without it every pod's, each prefixed pod.NAME. ?format=json as Envoy's admin gives it.
      const pod = r.query.get('pod')
      const stats: { name: string; value: number }[] = []
      for (const p of z.pods.values()) {
        if (pod && p.info.name !== pod) continue
        const snap = p.snapshot()
        for (const name of Object.keys(snap).sort()) stats.push({ name: pod ? name : `pod.${p.info.name}.${name}`, value: snap[name]! })
      }
      if (r.query.get('format') === 'json') return json({ stats })
      return text(stats.map((s) => `${s.name}: ${s.value}`).join('\n') + '\n')
    }
    case '/quitquitquit':
      if (r.method !== 'POST') return methodNotAllowed(r.method, ['POST'])
      hooks.quit()
      return text('shutdown now\n')
    default:
      return text('not found: try /config_dump, /stats, /stats?pod=NAME or POST /quitquitquit\n', 404)
  }
}

/** ztunnel's /config_dump `workloadState` (src/inpod/admin.rs): per uid, the pod and its open connections' count. */
function workloadState(z: Ztunnel): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [uid, p] of z.pods) {
    const hbone = p.hboneState()
    out[uid] = {
      state: 'Up',
      info: { name: p.info.name, namespace: p.info.namespace, serviceAccount: p.info.serviceAccount },
      listeners: p.listeners.map((l) => ({ name: l.name, port: l.port, active: l.activeConnections })),
      dns: p.dns?.addresses ?? [],
      // ours, not ztunnel's: the pod's identity and the HBONE sessions its outbound pools
      ...(hbone ? { hbone } : {}),
    }
  }
  return out
}

async function metrics(z: Ztunnel, r: AdminRequest): Promise<AdminResponse> {
  if (r.path !== '/metrics' && r.path !== '/stats/prometheus') return text('not found\n', 404)
  const body = [
    '# TYPE istio_build gauge',
    'istio_build{component="ztunnel",tag="sidecar-lab"} 1',
    z.metrics.prometheus(),
    z.workloadMetrics(),
  ]
  return { status: 200, body: body.join('\n'), contentType: 'text/plain; charset=utf-8' }
}

async function ready(hooks: AdminHooks, r: AdminRequest): Promise<AdminResponse> {
  if (r.path !== '/healthz/ready') return text('not found\n', 404)
  const pending = hooks.pending()
  return pending.length === 0 ? text('ready\n') : text(`not ready, pending: ${pending.join(', ')}\n`, 500)
}
