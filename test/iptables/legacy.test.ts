// --compat legacy reproduces the seed listing (an Istio pod about 1.10, DNS capture on): the restore
// text, as `iptables -S` would list it after restoring, equals the seed's nat and raw tables line for line.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { renderDryRun } from '../../src/iptables/build.js'
import { InvalidFlagError } from '../../src/errors.js'
import { parseFlags } from '../../src/iptables/flags.js'
import { canonical, listing } from './listing.js'

// The seed listing's raw and nat tables, copied into the repository (its header names the source).
const seed = readFileSync(new URL('../fixtures/apply/seed-listing.txt', import.meta.url), 'utf8')

function seedTable(table: string): string[] {
  const lines = seed.split('\n')
  const start = lines.findIndex((l) => l.trim() === `# iptables -S -t ${table}`)
  const rest = lines.slice(start + 1)
  const end = rest.findIndex((l) => !l.startsWith('-'))
  return rest.slice(0, end)
}

const argv = [
  '--compat',
  'legacy',
  '-p',
  '15001',
  '-z',
  '15006',
  '-u',
  '1337',
  '-g',
  '1337',
  '-m',
  'REDIRECT',
  '-i',
  '*',
  '-b',
  '*',
  '-d',
  '22,15020,15021,15090',
  '-o',
  '15020',
  '--redirect-dns',
  '--capture-all-dns',
  '--dry-run',
]

function legacyText(): string {
  const { rules, run } = parseFlags(argv, { env: {} })
  return renderDryRun(rules, { compat: run.compat })
}

t.test('the seed listing is where the test reads it from', async (t) => {
  t.equal(seedTable('nat').length, 32)
  t.equal(seedTable('raw').length, 8)
})

t.test('legacy nat table lists exactly as the seed', async (t) => {
  t.same(listing(legacyText(), 'nat'), seedTable('nat'))
})

t.test('legacy raw table lists exactly as the seed', async (t) => {
  t.same(listing(legacyText(), 'raw'), seedTable('raw'))
})

t.test('legacy touches no table the seed leaves empty', async (t) => {
  t.same(
    legacyText()
      .split('\n')
      .filter((l) => l.startsWith('* ')),
    ['* nat', '* raw'],
  )
})

t.test('the -S form puts basic matches first and makes -m tcp explicit', async (t) => {
  t.equal(
    canonical('-o lo ! -d 127.0.0.1/32 -p tcp ! --dport 53 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT'.split(' ')),
    '! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 53 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
  )
  t.equal(canonical('-o lo -s 127.0.0.6 -j RETURN'.split(' ')), '-s 127.0.0.6/32 -o lo -j RETURN')
})

t.test('legacy refuses TPROXY and nftables', async (t) => {
  const { rules } = parseFlags(['--compat', 'legacy', '-m', 'TPROXY', '-b', '*'], { env: {} })
  t.throws(() => renderDryRun(rules, { compat: 'legacy' }), InvalidFlagError)
  t.throws(() => renderDryRun(rules, { compat: 'legacy', nativeNftables: true }), {
    message: '--compat legacy describes iptables rules; it cannot be combined with --native-nftables',
  })
})

t.test('legacy refuses by name what the seed layout does not show, instead of leaving it out', async (t) => {
  const render = (extra: string[], env: Record<string, string> = {}) => {
    const { rules, run } = parseFlags(['--compat', 'legacy', '-p', '15001', '-b', '*', ...extra, '--dry-run'], { env })
    return () => renderDryRun(rules, { compat: run.compat })
  }
  t.throws(render(['-c', 'eth1']), { name: 'InvalidFlagError', message: /-c\/--istio-exclude-interfaces 'eth1'/ })
  t.throws(render(['--drop-invalid']), { message: /--drop-invalid/ })
  t.throws(render([], { ISTIO_OUTBOUND_OWNER_GROUPS: 'java' }), { message: /ISTIO_OUTBOUND_OWNER_GROUPS='java'/ })
  t.throws(render([], { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888' }), { message: /ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE='888'/ })
  t.doesNotThrow(render([]), 'the seed layout itself still renders')
})
