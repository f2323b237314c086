// V8 doubles its young generation (the new space's two semi-spaces, 1 MB each to start, up to 16 MB each) once
// more bytes survived its scavenges than the space holds. Every connection the listener accepts survives a
// scavenge or two while it is set up, so a sidecar that opened 9,000 connections had grown it to about 28 MB of
// resident memory that stays: 2.3 of the 5 KB it held per idle connection with the native engine (issue 18,
// measured by process.memoryUsage and v8.getHeapSpaceStatistics). With the native engine the JS thread allocates
// per connection (the accept, the record at close), never per byte, so the initial size serves it; the node engine,
// which allocates a Buffer per chunk, keeps V8's growth for its throughput.
import { setFlagsFromString } from 'node:v8'

/**
 * Keeps the young generation about the size it has now (within one doubling: test/proxy/young-generation.test.ts).
 * V8 reads --semi-space-growth-factor each time it would grow the main thread's new space; its size limits are
 * fixed when the heap is made, so they cannot be set from here.
 */
export function keepYoungGenerationSize(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
}
