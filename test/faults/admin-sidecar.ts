// A real sidecar process (dist/cli.js proxy) on loopback with free high ports, for the admin fault tests:
// it needs no root (it drops to 1337 when it has it) and no namespace, since nothing here is captured.
import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { engineFlags } from '../helpers/engine.js'

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

export interface AdminPorts {
  admin: number
  health: number
  prometheus: number
  merged: number
}

export interface Sidecar {
  ports: AdminPorts
  child: ChildProcess
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Ports the kernel hands out as free; closed again before the sidecar binds them (a small, local race). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

export async function startLoopbackSidecar(t: Teardown): Promise<Sidecar> {
  const [outbound, inbound, admin, health, prometheus, merged] = (await freePorts(6)) as [number, number, number, number, number, number]
  const child = spawn(
    process.execPath,
    [
      cli,
      'proxy',
      '--bind',
      '127.0.0.1',
      '--access-log',
      'off',
      '--log-level',
      'warn',
      '--outbound-port',
      String(outbound),
      '--inbound-port',
      String(inbound),
      '--admin-port',
      String(admin),
      '--health-port',
      String(health),
      '--prometheus-port',
      String(prometheus),
      '--merged-metrics-port',
      String(merged),
      '--drain-duration',
      '0s',
      ...engineFlags(),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  // SIGKILL: a frozen event loop never handles SIGTERM.
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const ports = { admin, health, prometheus, merged }
  const deadline = Date.now() + 15_000
  for (;;) {
    if ((await get(health, '/healthz/ready', 1000)).status === 200) return { ports, child }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sidecar did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export interface Reply {
  /** 0 when no answer came before the deadline or the connection failed */
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  error?: string
}

/** One HTTP request on its own connection; never rejects, so a test can assert on a missing answer. */
export function get(port: number, path: string, deadlineMs = 10_000, method = 'GET'): Promise<Reply> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: deadlineMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', (err) => resolve({ status: 0, headers: {}, body, error: err.message }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${deadlineMs} ms`)))
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: '', error: err.message }))
    req.end()
  })
}
