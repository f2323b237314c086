// Issue 10, item 2, the sidecar's own log: a stderr it cannot write (a file on a full disk, a pipe nobody
// reads any more) must neither block nor kill the sidecar. The lines are lost; the proxying is not.
import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { inNetns } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'
import { curlIn, podPair, repoRoot, runClient, startServerApp, startSidecar, type Pod } from '../helpers/pods.js'
import { fill, smallTmpfs } from '../helpers/tmpfs.js'
import { engineFlags } from '../helpers/engine.js'

const cli = join(repoRoot, 'dist/cli.js')
// tap adds its process-info hook to every child's NODE_OPTIONS; in a sidecar that dropped to uid 1337 the
// hook fails at exit writing .tap/ and prints a stack of its own, so the CLI runs without it, as a user runs it.
const node = ['env', '-u', 'NODE_OPTIONS', 'node']

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Starts the client pod's sidecar with the given stderr; resolves once /healthz/ready says 200. */
async function sidecarWithStderr(t: Teardown, pod: Pod, stderr: number | 'pipe') {
  const [program, ...args] = inNetns(pod.ns, [...node, cli, 'proxy', ...engineFlags(), '--access-log', 'off', '--drain-duration', '1s'])
  const child = spawn(program!, args, { stdio: ['ignore', 'ignore', stderr] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  if (stderr === 'pipe') child.stderr!.destroy()
  const end = Date.now() + 10_000
  for (;;) {
    if ((await curlIn(pod, 'http://127.0.0.1:15021/healthz/ready')).status === 200) break
    if (Date.now() > end || child.exitCode !== null) throw new Error(`sidecar not ready in 10 s (exit ${child.exitCode})`)
    await new Promise((r) => setTimeout(r, 200))
  }
  return { child, exited }
}

for (const kind of ['a file on a full disk', 'a closed pipe'] as const) {
  t.test(`stderr is ${kind}: the sidecar proxies and stops on SIGTERM with exit 0`, rootOnly(), async (t) => {
    const { client, server } = await podPair(t)
    await startServerApp(t, server, 9080)
    await startSidecar(t, server)
    let stderr: number | 'pipe' = 'pipe'
    if (kind === 'a file on a full disk') {
      const disk = await smallTmpfs(t, `${process.pid}-stderr`)
      stderr = openSync(join(disk, 'sidecar.log'), 'a')
      fill(disk)
      t.teardown(() => closeSync(stderr as number))
    }
    const sidecar = await sidecarWithStderr(t, client, stderr)
    for (let i = 0; i < 3; i++) {
      const r = await runClient(t, client, server.ip, 9080, 100_000)
      t.equal(r.receivedSha256, r.sentSha256, `connection ${i + 1}: 100 kB echoed intact through the sidecar`)
    }
    t.equal(sidecar.child.exitCode, null, 'the sidecar is still running')
    sidecar.child.kill('SIGTERM')
    const code = await Promise.race([sidecar.exited, new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000))])
    t.equal(code, 0, 'SIGTERM ends it with exit 0')
  })
}
