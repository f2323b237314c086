// The ztunnel's workload table (--local-xds) and identities (--ca-file, --identity-dir): a good file read as
// written, and every bad one refused with an error naming the file, the workload and the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseZtunnelFlags } from '../../src/ambient/flags.js'
import { issueWorkload, makeCa } from '../../src/ambient/certs.js'
import { IdentityStore, loadWorkloadTable, parseWorkloadTable } from '../../src/ambient/workloads.js'

const where = '--local-xds w.json'
const good = {
  name: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  addresses: ['198.18.0.3', '2001:2::3'],
  node: 'n',
  protocol: 'HBONE',
}

t.test('a good table: looked up by address (IPv4-mapped too), with the SPIFFE id of its service account', async (t) => {
  const table = parseWorkloadTable(
    JSON.stringify({ workloads: [good, { ...good, name: 'ratings', addresses: ['198.18.0.4'], protocol: 'TCP' }] }),
    where,
  )
  t.equal(table.byAddress('198.18.0.3')?.name, 'reviews')
  t.equal(table.byAddress('::ffff:198.18.0.3')?.name, 'reviews')
  t.equal(table.byAddress('2001:2::3')?.identity, 'spiffe://cluster.local/ns/default/sa/reviews')
  t.equal(table.byAddress('198.18.0.4')?.protocol, 'TCP')
  t.equal(table.byAddress('198.18.0.9'), undefined)
})

t.test('bad tables name the problem', async (t) => {
  const bad = (doc: unknown) => () => parseWorkloadTable(typeof doc === 'string' ? doc : JSON.stringify(doc), where)
  t.throws(bad('{"workloads": ['), { message: /^--local-xds w\.json: not JSON \(/ })
  t.throws(bad({ pods: [] }), { message: '--local-xds w.json: expected an object with a "workloads" array' })
  t.throws(bad({ workloads: [42] }), { message: '--local-xds w.json: workloads[0]: expected an object' })
  t.throws(bad({ workloads: [{ ...good, name: '' }] }), { message: '--local-xds w.json: workloads[0]: "name" must be a non-empty string' })
  t.throws(bad({ workloads: [{ ...good, addresses: [] }] }), {
    message: '--local-xds w.json: workloads[0] (reviews): "addresses" must be a non-empty array',
  })
  t.throws(bad({ workloads: [{ ...good, addresses: ['reviews.default'] }] }), {
    message: '--local-xds w.json: workloads[0] (reviews): address "reviews.default" is not an IP address',
  })
  t.throws(bad({ workloads: [{ ...good, protocol: 'http' }] }), {
    message: '--local-xds w.json: workloads[0] (reviews): "protocol" must be "HBONE" or "TCP", got "http"',
  })
  t.throws(bad({ workloads: [{ ...good, serviceAccount: 'Reviews_SA' }] }), {
    message: /^--local-xds w\.json: workloads\[0\] \(reviews\): service account "Reviews_SA" is not a valid name/,
  })
  t.throws(bad({ workloads: [good, { ...good, name: 'other' }] }), {
    message: '--local-xds w.json: address 198.18.0.3 is given to both default/reviews and default/other',
  })
})

t.test('files: a missing table, the three flags only together, a missing CA, a missing or wrong certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'workloads-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.throws(() => loadWorkloadTable(join(dir, 'none.json')), { message: `--local-xds "${join(dir, 'none.json')}": cannot read it (ENOENT)` })
  const table = join(dir, 'w.json')
  writeFileSync(table, JSON.stringify({ workloads: [good] }))
  t.throws(() => parseZtunnelFlags(['--pod', 'a=/run/netns/a', '--local-xds', table]), {
    message: 'HBONE needs --local-xds, --ca-file and --identity-dir together: --ca-file and --identity-dir missing',
  })
  const ca = await makeCa(join(dir, 'ca'))
  const ids = join(dir, 'identity')
  await issueWorkload(ca, join(ids, 'default', 'reviews'), { serviceAccount: 'reviews' })
  t.throws(() => new IdentityStore(join(dir, 'nope.pem'), ids), { message: /^--ca-file ".*nope\.pem": cannot read it \(ENOENT\)$/ })
  t.throws(() => new IdentityStore(table, ids), { message: /^--ca-file ".*w\.json": no PEM certificate in it$/ })
  const store = new IdentityStore(ca.cert, ids)
  t.match(store.of('default', 'reviews').cert, /BEGIN CERTIFICATE/)
  t.throws(() => store.of('default', 'ratings'), {
    message: `--identity-dir: no identity for default/ratings: ${join(ids, 'default', 'ratings', 'cert.pem')} (ENOENT)`,
  })
  // a certificate filed under the wrong service account is not that account's identity
  await issueWorkload(ca, join(ids, 'default', 'ratings'), { serviceAccount: 'reviews' })
  t.throws(() => store.of('default', 'ratings'), {
    message: `--identity-dir: ${join(ids, 'default', 'ratings', 'cert.pem')} is spiffe://cluster.local/ns/default/sa/reviews, not spiffe://cluster.local/ns/default/sa/ratings`,
  })
  const settings = parseZtunnelFlags(['--pod', 'a=/run/netns/a', '--local-xds', table, '--ca-file', ca.cert, '--identity-dir', ids])
  t.ok(settings !== 'help' && settings.mesh?.table.byAddress('198.18.0.3'), 'all three: the table is loaded')
})
