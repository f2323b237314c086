// The proxy command as a user runs it: exit codes and the messages that name the problem.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../helpers/pods.js'

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'node',
      [join(repoRoot, 'dist/cli.js'), ...args],
      { env: { ...process.env, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

t.test('a bad flag value stops the proxy with exit 2 and names the flag', async (t) => {
  const r = await cli(['proxy', '--connect-timeout', 'forever'])
  t.equal(r.code, 2)
  t.match(r.stderr, 'error: --connect-timeout: "forever" is not a duration')
})

t.test('an unknown flag is named', async (t) => {
  const r = await cli(['proxy', '--inbound-prot', '1'])
  t.equal(r.code, 2)
  t.match(r.stderr, 'unknown flag --inbound-prot')
})

t.test('a port in use stops the proxy with a message naming the port', async (t) => {
  const busy = createServer()
  await new Promise<void>((r) => busy.listen(0, '::', r))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const r = await cli([
    'proxy',
    '--outbound-port',
    String(port),
    '--inbound-port',
    String(port === 65535 ? 65534 : port + 1),
    '--uid',
    String(process.getuid?.() ?? 0),
  ])
  t.equal(r.code, 2)
  t.match(r.stderr, `virtualOutbound: cannot listen on :: port ${port}: it is already in use`)
})

t.test('a missing addon stops the proxy with a message saying how to build it', async (t) => {
  const r = await cli(['proxy'], { SIDECAR_LAB_ADDON: '/nonexistent/sockopt.node' })
  t.equal(r.code, 2)
  t.match(
    r.stderr,
    /error: the sockopt addon could not be loaded from \/nonexistent\/sockopt.node .*run `npm ci` or `npx node-gyp rebuild`/,
  )
})

t.test('--help and the top-level usage list the commands and flags', async (t) => {
  const top = await cli(['--help'])
  t.equal(top.code, 0)
  t.match(top.stdout, /proxy\s+run the sidecar/)
  t.match(top.stdout, /iptables\s+/)
  const help = await cli(['proxy', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, '--outbound-traffic-policy MODE')
  const unknown = await cli(['frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, "unknown command 'frobnicate'")
})

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

t.test('--relay native: the ready line and /server_info name the engine', async (t) => {
  const [outbound, inbound, admin] = [await freePort(), await freePort(), await freePort()]
  const child = spawn(
    'node',
    [join(repoRoot, 'dist/cli.js'), 'proxy', '--relay', 'native', '--outbound-port', String(outbound), '--inbound-port', String(inbound)]
      .concat(['--admin-port', String(admin), '--health-port', '0', '--prometheus-port', '0', '--merged-metrics-port', '0'])
      .concat([
        '--dns-port',
        '0',
        '--access-log',
        'off',
        '--uid',
        String(process.getuid?.() ?? 0),
        '--gid',
        String(process.getgid?.() ?? 0),
      ]),
  )
  t.teardown(() => child.kill('SIGKILL'))
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c
      if (stderr.includes('sidecar ready')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  t.match(stderr, /"relay":"native".*"msg":"sidecar ready \(relay engine: native\)"/)
  const info = (await (await fetch(`http://127.0.0.1:${admin}/server_info`)).json()) as { command_line_options: { relay: string } }
  t.equal(info.command_line_options.relay, 'native')
  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number]
  t.equal(code, 0, 'drains and exits 0 (the relay thread stopped)')
})
