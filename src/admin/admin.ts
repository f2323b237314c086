// Envoy's admin interface (15000): every endpoint group behind one router, with / and /help built from it.
import { configRoutes } from './config-endpoints.js'
import { homePage } from './home.js'
import { Router, text, type AdminRoute } from './router.js'
import { serverRoutes } from './server-endpoints.js'
import { statsRoutes } from './stats-endpoints.js'
import type { AdminControl, AdminTarget } from './target.js'

export function adminRouter(target: AdminTarget, control: AdminControl): Router {
  const routes: AdminRoute[] = [...serverRoutes(target, control), ...statsRoutes(target.stats), ...configRoutes(target)]
  // / and /help list the router they belong to; their handlers run only after it exists.
  const router: Router = new Router([
    ...routes,
    {
      path: '/',
      help: 'Admin home page',
      handle: () => ({ status: 200, body: homePage(router.routes), contentType: 'text/html; charset=UTF-8' }),
    },
    { path: '/help', help: 'print out list of admin commands', handle: () => text(router.help()) },
  ])
  return router
}
