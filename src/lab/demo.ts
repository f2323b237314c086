// `sidecar-lab demo`: the lab from nothing to a measured comparison and back to nothing.
import type { Command } from '../command.js'
import { parseCommandArgs } from '../flags/args.js'
import { integer, oneOf } from '../flags/values.js'
import { createLogger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import { run } from '../sys/exec.js'
import { applyRules, cliPath, down, up } from './lifecycle.js'
import { load as loadFrom, renderComparison, type LoadResult } from './load.js'
import { inNetns } from '../sys/netns.js'
import { appPort, appUser, podUrl } from './scene.js'
import { labFlag } from './state.js'
import { defaultRelay, relayEngines } from '../proxy/config.js'

const help = `usage: sidecar-lab demo [--lab NAME] [--duration SECONDS] [--connections N] [--relay node|native]

Builds the lab (productpage and reviews with capture rules and sidecars), traces one request
productpage -> reviews:${appPort} rule by rule, then loads reviews from productpage with autocannon twice:
direct (capture rules removed) and through both sidecars, prints the two side by side, and removes the lab.
--relay: the sidecars' relay engine, node or native (default ${defaultRelay}); the output names it.
Needs root. npm run demo installs what is missing first.
`

export const demoCommand: Command = {
  name: 'demo',
  async run(argv, io) {
    const options = {
      lab: { type: 'string', value: 'NAME' },
      duration: { type: 'string', value: 'SECONDS' },
      connections: { type: 'string', value: 'N' },
      relay: { type: 'string', value: 'node|native' },
      help: { type: 'boolean' },
    } as const
    const { values } = parseCommandArgs(argv, options, 'sidecar-lab demo')
    if (values.help) {
      io.stdout.write(help)
      return 0
    }
    // Every flag is checked before the lab is built: a bad --lab would otherwise fail half-way through up.
    const lab = labFlag(values.lab)
    const load = {
      durationS: integer('duration', values.duration, 10, 1, 600),
      connections: integer('connections', values.connections, 10, 1, 1000),
    }
    const relay = oneOf('relay', values.relay ?? defaultRelay, relayEngines)
    const log = createLogger({ level: 'warn', format: resolveLogFormat(undefined, io.env, io.stderr) })
    const say = (text: string) => io.stdout.write(text)
    say(`\n== 1. lab up: pods as network namespaces, capture rules from our istio-iptables, sidecars as uid 1337 (${relay} relay)\n`)
    const { state } = await up({ lab, rules: 'istio', relay, log })
    try {
      const target = podUrl('reviews')
      // a path other than /, which reviews answers itself: the load measures the one hop productpage -> reviews,
      // not also reviews' call to ratings that / makes on each request
      const loadTarget = `${target}load`
      say(`productpage ${state.pods.productpage!.ip}, reviews ${state.pods.reviews!.ip}, ratings ${state.pods.ratings!.ip} (no sidecar)\n`)

      say(`\n== 2. one request, productpage -> ${target}, traced through every rule it hits\n`)
      const trace = await run(process.execPath, [cliPath, 'trace', '--lab', lab], { allowFailure: true })
      if (trace.code === 0) say(trace.stdout)
      else {
        // Without the trace command the request still shows the path's two ends.
        const [program, ...args] = inNetns(state.pods.productpage!.ns, ['curl', '-s', target], appUser)
        say((await run(program!, args)).stdout)
      }

      say(`\n== 3. load: autocannon -c ${load.connections} -d ${load.durationS} from productpage to reviews\n`)
      const results: LoadResult[] = []
      say('capture rules off in both pods (direct)...\n')
      for (const pod of ['productpage', 'reviews']) await applyRules(state, pod, true)
      results.push(await loadFrom('direct', state.pods.productpage!.ns, loadTarget, load))
      say('capture rules on again (through both sidecars)...\n')
      for (const pod of ['productpage', 'reviews']) await applyRules(state, pod)
      results.push(await loadFrom(`both sidecars (${relay} relay)`, state.pods.productpage!.ns, loadTarget, load))
      say('\n' + renderComparison(results))
    } finally {
      say(`\n== 4. lab down\n`)
      const { removed } = await down(lab, log)
      say(`removed ${removed.join(', ')}\n`)
    }
    return 0
  },
}
