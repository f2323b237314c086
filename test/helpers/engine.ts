// Which relay engine the sidecars that the tests start use (issue 13): SIDECAR_LAB_TEST_RELAY=native makes every
// helper that starts `sidecar-lab proxy` add `--relay native`; unset (or `node`) adds nothing, so the tests run
// the node:net relay exactly as before the flag existed. scripts/test.mjs sets it for its second run.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

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

/** The flags that select an engine: none for node (the default), so this branch runs before the flag exists. */
export function engineFlags(engine: RelayEngine = testEngine()): string[] {
  return engine === 'native' ? ['--relay', 'native'] : []
}

/** Whether the addon the sidecar will load (SIDECAR_LAB_ADDON or build/Release) carries the native relay. */
export function addonHasRelay(): boolean {
  const path = process.env.SIDECAR_LAB_ADDON || join(repoRoot, 'build/Release/sockopt.node')
  try {
    return typeof (createRequire(import.meta.url)(path) as { relayStart?: unknown }).relayStart === 'function'
  } catch {
    return false
  }
}

/** Whether the tree holds the native engine's sources (then a missing relayStart is a broken build, not "not yet"). */
export function engineInTree(): boolean {
  return existsSync(join(repoRoot, 'native/relay.c')) || existsSync(join(repoRoot, 'src/native/relay.ts'))
}

/**
 * For a test that needs the native engine: skip with the reason while the engine is not in this tree (before
 * issue 13's engine is merged); once it is, never skip under CI=true: a build without relayStart is a failure.
 */
export function nativeEngineOnly(): { skip?: string } {
  if (addonHasRelay()) return {}
  if (engineInTree() && process.env.CI === 'true') {
    throw new Error(
      'CI=true and the native engine is in the tree, but the built addon does not export relayStart: rebuild it (npm run build:addon)',
    )
  }
  return {
    skip: engineInTree()
      ? 'the built addon does not export relayStart: rebuild it (npm run build:addon)'
      : 'the native relay engine is not in this tree yet (the addon has no relayStart)',
  }
}
