#!/usr/bin/env node
// One bulk TCP stream from a client pod to a server pod, direct (no rules, no sidecars) and through both
// sidecars (the seed's capture rules, sidecar-lab proxy as uid 1337 in each pod), interleaved A B A B.
// Prints MB/s per round and the medians. Needs root. usage: node bench/bulk-stream.mjs [MB] [ROUNDS]
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const mb = Number(process.argv[2] ?? 500)
const rounds = Number(process.argv[3] ?? 3)
const tag = `slb-${process.pid % 100000}`
const procs = []
const sh = (...args) => execFileSync(args[0], args.slice(1), { input: args.input, stdio: ['pipe', 'pipe', 'pipe'] }).toString()
const inNs = (ns, ...argv) => sh('ip', 'netns', 'exec', ns, ...argv)

function seedRules(v6) {
  const lines = readFileSync(join(root, 'test/fixtures/seed-rules.txt'), 'utf8').split('\n')
  const out = []
  let rows = []
  let table = ''
  const flush = () => table && out.push(`*${table}`, ...rows.filter((l) => l.startsWith('-N')), ...rows.filter((l) => l.startsWith('-A')), 'COMMIT')
  for (const l of lines) {
    const m = /^# table (\w+)/.exec(l)
    if (m) { flush(); table = m[1]; rows = [] } else if (l.startsWith('-')) rows.push(l)
  }
  flush()
  const text = out.join('\n') + '\n'
  return v6 ? text.replaceAll('127.0.0.6/32', '::6/128').replaceAll('127.0.0.1/32', '::1/128') : text
}

function setup(name, withSidecars) {
  const c = `${tag}-${name}-c`, s = `${tag}-${name}-s`
  for (const ns of [c, s]) { sh('ip', 'netns', 'add', ns); inNs(ns, 'ip', 'link', 'set', 'lo', 'up') }
  sh('ip', 'link', 'add', `${tag}${name}a`, 'type', 'veth', 'peer', 'name', `${tag}${name}b`)
  for (const [dev, ns, ip] of [[`${tag}${name}a`, c, '198.18.0.1/24'], [`${tag}${name}b`, s, '198.18.0.2/24']]) {
    sh('ip', 'link', 'set', dev, 'netns', ns)
    inNs(ns, 'ip', 'addr', 'add', ip, 'dev', dev)
    inNs(ns, 'ip', 'link', 'set', dev, 'up')
  }
  if (withSidecars) {
    for (const ns of [c, s]) {
      execFileSync('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], { input: seedRules(false) })
      procs.push(spawn('ip', ['netns', 'exec', ns, 'node', join(root, 'dist/cli.js'), 'proxy', '--access-log', 'off', '--log-level', 'warn'], { stdio: 'ignore' }))
    }
  }
  procs.push(spawn('ip', ['netns', 'exec', s, 'node', join(root, 'test/helpers/apps/server.mjs'), '9080', 'sink'], { stdio: 'ignore' }))
  return c
}

function cleanup() {
  for (const p of procs) p.kill('SIGKILL')
  for (const ns of sh('ip', 'netns', 'list').split('\n').map((l) => l.split(' ')[0]).filter((n) => n?.startsWith(tag))) {
    try { sh('ip', 'netns', 'del', ns) } catch {}
  }
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
try {
  const direct = setup('d', false)
  const sidecar = setup('x', true)
  await new Promise((r) => setTimeout(r, 1500))
  const results = { direct: [], sidecars: [] }
  for (let i = 0; i < rounds; i++) {
    for (const [label, ns] of [['direct', direct], ['sidecars', sidecar]]) {
      const out = inNs(ns, 'setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', 'node', join(root, 'test/helpers/apps/client.mjs'), '198.18.0.2', '9080', String(mb * 1e6))
      const r = JSON.parse(out)
      if (r.error) throw new Error(`${label}: ${r.error}`)
      const rate = mb / (r.ms / 1000)
      results[label].push(rate)
      console.log(`round ${i + 1} ${label.padEnd(8)} ${mb} MB in ${r.ms} ms = ${rate.toFixed(0)} MB/s`)
    }
  }
  const d = median(results.direct), x = median(results.sidecars)
  console.log(`median: direct ${d.toFixed(0)} MB/s, through both sidecars ${x.toFixed(0)} MB/s (${(x / d).toFixed(2)}x direct)`)
} finally {
  cleanup()
}
