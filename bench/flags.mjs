// @ts-check
// The bench scripts' flags, parsed as every sidecar-lab command parses its own (src/flags, compiled in dist/):
// one parseArgs wrapper, the same value parsers, and one way to fail: "NAME: MESSAGE", the usage, exit 2.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
/** @type {typeof import('../src/flags/args.js')} */
const args = await import(new URL('../dist/flags/args.js', import.meta.url).href)
/** @type {typeof import('../src/flags/values.js')} */
export const flags = await import(new URL('../dist/flags/values.js', import.meta.url).href)
/** @type {typeof import('../src/errors.js')} */
const errors = await import(new URL('../dist/errors.js', import.meta.url).href)
/** @type {typeof import('../src/proxy/config.js')} */
const proxyConfig = await import(new URL('../dist/proxy/config.js', import.meta.url).href)
/** A flag's value that the shared parsers accept but the script does not (its message names the flag). */
export const InvalidFlag = errors.InvalidFlagError
const root = fileURLToPath(new URL('..', import.meta.url))

/** --record and --out, the flags of every script that writes results. */
export const resultFlags = /** @type {const} */ ({ record: { type: 'boolean' }, out: { type: 'string' } })

/** --relay, as `sidecar-lab proxy`, `lab up` and the demo take it: the engine of the lab's sidecars. */
export const relayFlag = /** @type {const} */ ({ relay: { type: 'string', value: 'node|native' } })
/** The engine the sidecars run when --relay is not given (src/proxy/config.ts: one constant for every command). */
export const defaultRelay = proxyConfig.defaultRelay

/**
 * --relay's value, checked: node or native, the default when not given.
 * @param {string | undefined} text
 * @returns {import('../src/proxy/config.js').RelayEngine}
 */
export function relayValue(text) {
  return flags.oneOf('relay', text ?? proxyConfig.defaultRelay, proxyConfig.relayEngines)
}

/**
 * Where a run writes: --out DIR; with --record the committed folder the README cites (`recorded`); else
 * `scratch` under bench/results/tmp, which git ignores, so trying a script never overwrites a recorded run.
 * @param {{ record?: boolean, out?: string }} values
 * @param {string} recorded relative to the repository, e.g. 'bench/results/soak'
 * @param {string} scratch relative to the repository, e.g. 'bench/results/tmp/soak'
 */
export function resultsDir(values, recorded, scratch) {
  if (values.record && values.out !== undefined)
    throw new InvalidFlag(`--record writes ${recorded}; --out names another folder: give one of them`)
  return values.out ?? join(root, values.record ? recorded : scratch)
}

/**
 * argv -> what `read` makes of the values; --help prints usage and exits 0, a flag error exits 2 naming it.
 * @template {import('../src/flags/args.js').FlagOptions} T
 * @template R
 * @param {string} name the script, as its messages name it ('soak')
 * @param {T} options
 * @param {string} usage
 * @param {(values: import('../src/flags/args.js').FlagValues<T>) => R} read
 * @returns {R}
 */
export function benchFlags(name, options, usage, read) {
  try {
    const { values } = args.parseCommandArgs(process.argv.slice(2), { ...options, help: { type: 'boolean' } }, `node bench/${name}.mjs`)
    if (values.help) {
      process.stdout.write(usage)
      process.exit(0)
    }
    lostToNpm(Object.keys(options))
    return read(/** @type {import('../src/flags/args.js').FlagValues<T>} */ (values))
  } catch (err) {
    const code = /** @type {{ code?: unknown }} */ (err).code
    if (typeof code !== 'string' || !code.startsWith('SIDECAR_ERR_')) throw err
    process.stderr.write(`${name}: ${/** @type {Error} */ (err).message}\n${usage}`)
    process.exit(2)
  }
}

/**
 * `npm run profile --pod=foo` (no `--`) hands --pod to npm, which sets npm_config_pod and runs the script
 * without it: the script would run with its default and say nothing.
 * @param {string[]} flagNames
 */
function lostToNpm(flagNames) {
  const event = process.env.npm_lifecycle_event
  if (!event) return
  for (const flag of flagNames) {
    const value = process.env[`npm_config_${flag.replace(/-/g, '_')}`]
    if (value === undefined) continue
    const given = value === 'true' ? `--${flag}` : `--${flag}=${value}`
    throw new InvalidFlag(
      `${given} went to npm, not to the script: put the script's flags after -- (npm run ${event} -- ${given.replace('=', ' ')})`,
    )
  }
}
