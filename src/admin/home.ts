// The admin home page: Envoy's table of endpoints, reads as links and state changes as POST buttons.
import { type AdminRoute } from './router.js'

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function row(r: AdminRoute): string {
  const path = escapeHtml(r.path)
  const cell = r.mutates
    ? `<form action="${path}" method="post"><button class="button-link" type="submit">${path.slice(1)}</button></form>`
    : `<a href="${path}">${path.slice(1) || '/'}</a>`
  const params = (r.params ?? []).map((p) => `<li><code>${escapeHtml(p.name)}</code>: ${escapeHtml(p.help)}</li>`).join('')
  return `<tr class="home-row"><td class="home-data">${cell}</td><td class="home-data">${escapeHtml(r.help)}${params ? `<ul>${params}</ul>` : ''}</td></tr>`
}

export function homePage(routes: AdminRoute[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><title>Envoy Admin</title></head>',
    '<body>',
    '<table class="home-table">',
    '<thead><tr><th class="home-data">Command</th><th class="home-data">Description</th></tr></thead>',
    '<tbody>',
    ...routes.filter((r) => r.path !== '/').map(row),
    '</tbody>',
    '</table>',
    '</body>',
    '</html>',
    '',
  ].join('\n')
}
