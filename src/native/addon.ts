// The one place that finds and loads our Node-API addon (binding.gyp builds build/Release/sockopt.node):
// sockopt.ts and relay.ts type its two faces; the test runner, the test helpers and the bench ask here whether
// the build has the relay engine. SIDECAR_LAB_ADDON points at another build (the sanitizer build of
// `npm run test:asan`, a debug build, one for another Node ABI).
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { AddonLoadError } from '../errors.js'

const require = createRequire(import.meta.url)
let loaded: Record<string, unknown> | undefined

/** Where the addon is loaded from. */
export function addonPath(): string {
  return process.env.SIDECAR_LAB_ADDON || fileURLToPath(new URL('../../build/Release/sockopt.node', import.meta.url))
}

/** The addon's exports, loaded once; AddonLoadError says what to do when it cannot be. */
export function loadAddon<T>(): T {
  if (loaded) return loaded as T
  if (process.platform !== 'linux') {
    throw new AddonLoadError(`the sockopt addon needs Linux (SO_ORIGINAL_DST is a netfilter option); this is ${process.platform}`)
  }
  const path = addonPath()
  try {
    loaded = require(path) as Record<string, unknown>
  } catch (err) {
    throw new AddonLoadError(
      `the sockopt addon could not be loaded from ${path} (${(err as Error).message.split('\n')[0]}): ` +
        'run `npm ci` or `npx node-gyp rebuild` in the sidecar-lab folder (needs python3, make and g++)',
      err,
    )
  }
  return loaded as T
}

/** Whether the addon loads and carries the native relay engine (a build from before it would not). */
export function addonHasRelay(): boolean {
  try {
    return typeof loadAddon<{ relayStart?: unknown }>().relayStart === 'function'
  } catch {
    return false
  }
}
