// Which relay engine the sidecars that the tests start use (issue 13): SIDECAR_LAB_TEST_RELAY=native makes every
// helper that starts `sidecar-lab proxy` add `--relay native`; unset (or `node`) adds `--relay node`, so the first
// run is the node:net relay's although native is the default. scripts/test.mjs sets it for its second run.
import { addonHasRelay } from '../../src/native/addon.js'

export type RelayEngine = 'node' | 'native'

export function parseEngine(value: string | undefined, from: string): RelayEngine {
  if (value === undefined || value === '' || value === 'node') return 'node'
  if (value === 'native') return 'native'
  throw new Error(`${from}=${JSON.stringify(value)}: the relay engine is 'node' or 'native'`)
}

/** The engine this test process runs its sidecars with. */
export function testEngine(): RelayEngine {
  return parseEngine(process.env.SIDECAR_LAB_TEST_RELAY, 'SIDECAR_LAB_TEST_RELAY')
}

/** The flags that select an engine, always given: the first run is the node engine's, whatever the default. */
export function engineFlags(engine: RelayEngine = testEngine()): string[] {
  return ['--relay', engine]
}

/**
 * For a test that needs the native engine: the engine's sources are in the tree, so a build without relayStart
 * is a broken build, never a reason to skip.
 */
export function nativeEngineOnly(): { skip?: string } {
  if (!addonHasRelay()) throw new Error('the built addon does not export relayStart: rebuild it (npm run build:addon)')
  return {}
}
