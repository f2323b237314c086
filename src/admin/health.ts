// The health port (15021): GET /healthz/ready is 200 once the listeners are bound and 503 while draining
// or after /healthcheck/fail, which is what a kubelet readiness probe reads.
import { readMethods, refuseMethod, text, type AdminRequest, type AdminResponse } from './router.js'
import type { AdminTarget } from './target.js'

export function healthHandler(target: AdminTarget): (req: AdminRequest) => Promise<AdminResponse> {
  return async (req) => {
    if (req.path !== '/healthz/ready') return text('not found\n', 404)
    const refused = refuseMethod(req, readMethods)
    if (refused) return refused
    const state = target.state
    return state === 'LIVE' ? text('') : text(`envoy not ready: server is ${state}\n`, 503)
  }
}
