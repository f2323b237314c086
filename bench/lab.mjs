// @ts-check
// The lab's compiled modules (dist/lab, dist/sys), typed by their TypeScript sources: the bench drives the same pods,
// rules and processes as `sidecar-lab lab`, and tsc checks every call against src/lab (bench/tsconfig.json).
const dist = new URL('../dist/lab/', import.meta.url)

/** @type {typeof import('../src/lab/lifecycle.js')} */
export const lifecycle = await import(new URL('lifecycle.js', dist).href)
/** @type {typeof import('../src/lab/processes.js')} */
export const processes = await import(new URL('processes.js', dist).href)
/** @type {typeof import('../src/sys/netns.js')} */
export const netns = await import(new URL('../sys/netns.js', dist).href)
/** @type {typeof import('../src/sys/exec.js')} */
export const exec = await import(new URL('../sys/exec.js', dist).href)
/** @type {typeof import('../src/lab/state.js')} */
export const state = await import(new URL('state.js', dist).href)
/** @type {typeof import('../src/logger.js')} */
export const logger = await import(new URL('../logger.js', dist).href)

/** @typedef {import('../src/lab/state.js').LabState} LabState */
