// Envoy's admin dispatch: exact path match, state-changing endpoints only by POST (405 otherwise), and an
// unknown path answered 404 with the list of endpoints, as Envoy does. Every port of the sidecar answers a
// method it does not serve the same way, with methodNotAllowed: 405 and an Allow header.

export interface AdminRequest {
  method: string
  path: string
  query: URLSearchParams
}

export interface AdminResponse {
  status: number
  body: string
  contentType?: string
  headers?: Record<string, string>
}

export interface AdminParam {
  name: string
  help: string
  /** allowed values, listed in /help as Envoy lists enum parameters */
  choices?: string[]
}

export interface AdminRoute {
  path: string
  help: string
  /** changes the server: POST only, as in Envoy */
  mutates?: boolean
  params?: AdminParam[]
  handle(req: AdminRequest): AdminResponse | Promise<AdminResponse>
}

export const textPlain = 'text/plain; charset=UTF-8'
export const applicationJson = 'application/json'

export function text(body: string, status = 200): AdminResponse {
  return { status, body, contentType: textPlain }
}

export function json(value: unknown, status = 200): AdminResponse {
  return { status, body: JSON.stringify(value, null, 2) + '\n', contentType: applicationJson }
}

/** What the read-only endpoints of 15021, 15090 and 15020 serve (HEAD is GET without the body). */
export const readMethods = ['GET', 'HEAD'] as const
/** Envoy's admin also takes POST for a read. */
const adminReadMethods = ['GET', 'HEAD', 'POST'] as const
const mutateMethods = ['POST'] as const

/** 405 naming the method, with the Allow header RFC 9110 asks for; the first allowed method is "required". */
export function methodNotAllowed(method: string, allow: readonly string[]): AdminResponse {
  return { ...text(`Method ${method} not allowed, ${allow[0]} required.`, 405), headers: { allow: allow.join(', ') } }
}

/** The 405 for a method outside `allow`, or null when it is served. */
export function refuseMethod(req: AdminRequest, allow: readonly string[]): AdminResponse | null {
  return allow.includes(req.method) ? null : methodNotAllowed(req.method, allow)
}

export class Router {
  readonly #routes = new Map<string, AdminRoute>()

  constructor(routes: AdminRoute[]) {
    for (const r of routes) this.#routes.set(r.path, r)
  }

  /** Sorted by path, as Envoy prints them. */
  get routes(): AdminRoute[] {
    return [...this.#routes.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  }

  async dispatch(req: AdminRequest): Promise<AdminResponse> {
    const route = this.#routes.get(req.path)
    if (!route) return text(`invalid path. ${this.help()}`, 404)
    // Reads take GET, HEAD and, as in Envoy, POST; anything else cannot mean a read.
    return refuseMethod(req, route.mutates ? mutateMethods : adminReadMethods) ?? route.handle(req)
  }

  /** Envoy's /help text: one line per endpoint, its parameters indented below it. */
  help(): string {
    const lines = ['admin commands are:']
    for (const r of this.routes) {
      lines.push(`  ${r.path}${r.mutates ? ' (POST)' : ''}: ${r.help}`)
      for (const p of r.params ?? []) lines.push(`      ${p.name}: ${p.help}${p.choices ? `; One of (${p.choices.join(', ')})` : ''}`)
    }
    return lines.join('\n') + '\n'
  }
}

/** Envoy treats a parameter as set when it is present at all (?usedonly, ?graceful). */
export function flag(query: URLSearchParams, name: string): boolean {
  return query.has(name)
}
