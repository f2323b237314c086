// @ts-check
// The bench scripts' flags, parsed as every sidecar-lab command parses its own (src/flags, compiled in dist/):
// one parseArgs wrapper, the same value parsers, and one way to fail: "NAME: MESSAGE", the usage, exit 2.
/** @type {typeof import('../src/flags/args.js')} */
const args = await import(new URL('../dist/flags/args.js', import.meta.url).href)
/** @type {typeof import('../src/flags/values.js')} */
export const flags = await import(new URL('../dist/flags/values.js', import.meta.url).href)
/** @type {typeof import('../src/errors.js')} */
const errors = await import(new URL('../dist/errors.js', import.meta.url).href)
/** A flag's value that the shared parsers accept but the script does not (its message names the flag). */
export const InvalidFlag = errors.InvalidFlagError

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
    return read(/** @type {import('../src/flags/args.js').FlagValues<T>} */ (values))
  } catch (err) {
    const code = /** @type {{ code?: unknown }} */ (err).code
    if (typeof code !== 'string' || !code.startsWith('SIDECAR_ERR_')) throw err
    process.stderr.write(`${name}: ${/** @type {Error} */ (err).message}\n${usage}`)
    process.exit(2)
  }
}
