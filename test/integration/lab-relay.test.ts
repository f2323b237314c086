// lab up --relay: every sidecar starts with the engine asked for, the state records it, and lab status shows
// the engine each running sidecar reports (its /server_info), in the short form and in --json.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { listNetns } from '../../src/sys/netns.js'
import { readState } from '../../src/lab/state.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { nativeEngineOnly } from '../helpers/engine.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test(
  'lab up --relay native: both sidecars relay with the native engine, and status says so',
  { ...rootOnly(), ...nativeEngineOnly() },
  async (t) => {
    const lab = `sltr${process.pid % 10000}`
    t.teardown(() => cli(['lab', 'down', '--lab', lab]))
    const upped = await cli(['lab', 'up', '--lab', lab, '--relay', 'native'])
    t.equal(upped.code, 0, upped.stderr)
    t.equal(readState(lab)?.relay, 'native', 'the state records the engine')

    // (status wraps its prose at 80 columns when not on a terminal)
    // a request through both sidecars, so the engine has carried bytes when status is asked
    const got = await cli(['lab', 'exec', 'productpage', '--lab', lab, '--', 'curl', '-s', '--max-time', '5', 'http://198.18.0.20:9080/'])
    t.match(got.stdout, /"service":"reviews"/, 'productpage reached reviews through both sidecars')

    const status = await cli(['lab', 'status', '--lab', lab])
    t.match(status.stdout, /rules: istio, mode: REDIRECT,\s+relay: native\n/, 'the lab line names the engine')
    t.match(status.stdout, /\nproductpage: sidecar \(native\s+relay\)\s+listening\s+on /, "productpage's sidecar reports native")
    t.match(status.stdout, /\nreviews: sidecar \(native\s+relay\)\s+listening\s+on /, "reviews' sidecar reports native")

    const json = JSON.parse((await cli(['lab', 'status', '--json', '--lab', lab])).stdout) as {
      relay: string
      pods: { name: string; relay?: string | null }[]
    }
    t.equal(json.relay, 'native')
    t.same(
      json.pods.map((p) => [p.name, p.relay]),
      [
        ['productpage', 'native'],
        ['reviews', 'native'],
        ['ratings', undefined],
      ],
      'each sidecar pod carries the engine its sidecar reports; ratings has no sidecar',
    )

    const again = await cli(['lab', 'up', '--lab', lab, '--relay', 'node'])
    t.equal(again.code, 2, 'a lab up asking for the node engine does not pass for the native lab')
    t.match(
      again.stderr,
      /is up as network namespaces with the injector's rules in REDIRECT mode; this 'lab up' asks for network namespaces with the injector's rules in REDIRECT mode and the node relay engine: run/,
    )

    await cli(['lab', 'down', '--lab', lab])
    t.same(await listNetns(`${lab}-`), [], 'down removed every namespace')
  },
)
