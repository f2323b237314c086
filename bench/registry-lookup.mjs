#!/usr/bin/env node
// What REGISTRY_ONLY costs as the registry grows: RSS after loading N entries and ns per lookup (the
// lookup every outbound connection makes). Each size runs in its own process so RSS is that size's alone.
// Uses dist/ (run `npx tsc -p tsconfig.json` first). usage: node bench/registry-lookup.mjs [SIZE...]
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0)

/** A deterministic generator, so before/after runs see the same registry and destinations. */
/** @param {number} seed */
function rng(seed) {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return s / 2 ** 32
  }
}

/** Entries as a pod's registry might hold them: service IPs with a port, pod subnets, some IPv6. */
/** @param {number} i @param {() => number} r */
function entryText(i, r) {
  const a = 18 + (i % 2)
  const b = (i >> 8) & 255
  const c = i & 255
  switch (i % 4) {
    case 0:
      return `svc${i}=198.${a}.${b}.${c}:${1000 + Math.floor(r() * 9000)}`
    case 1:
      return `pod${i}=198.${a}.${b}.${c}`
    case 2:
      return `net${i}=198.${a}.${b}.0/24`
    default:
      return `v6svc${i}=[2001:2:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1]:443`
  }
}

/** @param {number} size */
async function measure(size) {
  // A path in a variable, so the type check reads the types from src/ instead of checking dist/'s JS.
  const built = '../dist/registry/registry.js'
  /** @type {typeof import('../src/registry/registry.js')} */
  const { Registry, parseRegistryEntry } = await import(built)
  const r = rng(size)
  const entries = Array.from({ length: size }, (_, i) => parseRegistryEntry(entryText(i, r), 'bench'))
  const registry = new Registry(entries)
  globalThis.gc?.()
  const rssMB = process.memoryUsage().rss / 1024 ** 2
  // Half the destinations are in the registry, half are not (the blackhole path scans everything).
  /** @type {import('../src/net/address.js').Endpoint[]} */
  const dsts = Array.from({ length: 4096 }, (_, i) => {
    const e = /** @type {import('../src/net/address.js').Endpoint} */ (entries[Math.floor(r() * entries.length)])
    if (i % 2) return { address: '198.19.254.' + (i & 255), port: 80, family: /** @type {4} */ (4) }
    return { address: e.address, port: e.port || 80, family: e.family }
  })
  let hits = 0
  for (let i = 0; i < 64; i++) if (registry.lookup(/** @type {import('../src/net/address.js').Endpoint} */ (dsts[i % dsts.length]))) hits++ // warm up
  // Bounded in count and time: at most 2 000 000 lookups or about 2 s.
  let n = 0
  const start = process.hrtime.bigint()
  let elapsed = 0n
  while (n < 2_000_000 && elapsed < 2_000_000_000n) {
    for (let i = 0; i < 16; i++, n++)
      if (registry.lookup(/** @type {import('../src/net/address.js').Endpoint} */ (dsts[n % dsts.length]))) hits++
    elapsed = process.hrtime.bigint() - start
  }
  return { size, rssMB: Number(rssMB.toFixed(1)), nsPerLookup: Math.round(Number(elapsed) / n), lookups: n, hits }
}

if (process.env.REGISTRY_BENCH_CHILD) {
  process.stdout.write(JSON.stringify(await measure(Number(process.env.REGISTRY_BENCH_CHILD))) + '\n')
} else {
  const baseline = JSON.parse(execFileSync(process.execPath, ['-e', 'console.log(JSON.stringify(process.memoryUsage().rss))']).toString())
  console.log(`node ${process.version}, empty node process RSS ${(baseline / 1024 ** 2).toFixed(1)} MB`)
  console.log('entries   RSS MB   ns/lookup   lookups')
  for (const size of sizes.length ? sizes : [10, 1000, 100_000]) {
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
      env: { ...process.env, REGISTRY_BENCH_CHILD: String(size) },
    }).toString()
    const m = JSON.parse(out)
    console.log(
      `${String(m.size).padStart(7)}  ${String(m.rssMB).padStart(7)}  ${String(m.nsPerLookup).padStart(10)}  ${String(m.lookups).padStart(8)}`,
    )
  }
}
