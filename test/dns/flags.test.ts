// The DNS proxy's flags and files: defaults, resolv.conf, --dns-upstream, --dns-hosts, and errors naming
// the flag; the registry's NAMESPACE/NAME form that feeds the name table.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseResolvConf } from '../../src/dns/resolv-conf.js'
import { NameTable, namespaceFromSearch } from '../../src/dns/table.js'
import { parseProxyFlags } from '../../src/proxy/flags.js'
import { parseRegistryEntry } from '../../src/registry/registry.js'

const dir = mkdtempSync(join(tmpdir(), 'slt-dns-flags-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const resolv = join(dir, 'resolv.conf')
writeFileSync(
  resolv,
  '# pod\nnameserver 198.18.0.53\nnameserver 2001:2::53\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n',
)
const hosts = join(dir, 'hosts')
writeFileSync(hosts, '198.18.0.99 db.lab.test db\n2001:2::99 db.lab.test\n')

t.test('defaults: 15053, 5 s, upstreams and search list from resolv.conf', async (t) => {
  const c = parseProxyFlags(['--dns-resolv-conf', resolv])
  if (c === 'help') throw new Error('help')
  t.equal(c.dns.port, 15053)
  t.equal(c.dns.timeoutMs, 5000)
  t.same(c.dns.upstreams, [
    { address: '198.18.0.53', port: 53 },
    { address: '2001:2::53', port: 53 },
  ])
  t.same(c.dns.search, ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'])
})

t.test('--dns-upstream, --dns-hosts, --dns-timeout and --dns-port 0', async (t) => {
  const c = parseProxyFlags([
    '--dns-upstream',
    '127.0.0.1:5353,[::1]:53,198.18.0.53',
    '--dns-hosts',
    hosts,
    '--dns-timeout',
    '2s',
    '--dns-resolv-conf',
    resolv,
  ])
  if (c === 'help') throw new Error('help')
  t.same(c.dns.upstreams, [
    { address: '127.0.0.1', port: 5353 },
    { address: '::1', port: 53 },
    { address: '198.18.0.53', port: 53 },
  ])
  t.same(c.dns.hosts, [
    { address: '198.18.0.99', names: ['db.lab.test', 'db'] },
    { address: '2001:2::99', names: ['db.lab.test'] },
  ])
  t.equal(c.dns.timeoutMs, 2000)
  const off = parseProxyFlags(['--dns-port', '0'])
  t.equal(off !== 'help' && off.dns.port, 0)
})

t.test('bad values name the flag', async (t) => {
  t.throws(() => parseProxyFlags(['--dns-port', '70000']), { code: 'SIDECAR_ERR_INVALID_FLAG', message: /--dns-port/ })
  t.throws(() => parseProxyFlags(['--dns-upstream', 'dns.example']), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /--dns-upstream: 'dns.example'/,
  })
  t.throws(() => parseProxyFlags(['--dns-hosts', join(dir, 'nope')]), {
    code: 'SIDECAR_ERR_INVALID_FLAG',
    message: /--dns-hosts: cannot read/,
  })
  writeFileSync(join(dir, 'bad-hosts'), 'db.lab.test 198.18.0.99\n')
  t.throws(() => parseProxyFlags(['--dns-hosts', join(dir, 'bad-hosts')]), { message: /line 1: expected ADDRESS NAME/ })
  t.throws(() => parseProxyFlags(['--dns-timeout', '0']), { message: /--dns-timeout/ })
  t.throws(() => parseProxyFlags(['--dns-resolv-conf', join(dir, 'nope')]), { message: /--dns-resolv-conf: cannot read/ })
})

t.test('registry entries take a namespace; the table expands it the way a search list does', async (t) => {
  const e = parseRegistryEntry('default/reviews=198.18.0.20:9080', 'x')
  t.match(e, { name: 'reviews', namespace: 'default', address: '198.18.0.20', port: 9080 })
  t.equal(parseRegistryEntry('db=198.18.0.0/16:5432', 'x').namespace, undefined)
  t.throws(() => parseRegistryEntry('Bad_NS/reviews=198.18.0.20', 'x'), { code: 'SIDECAR_ERR_INVALID_FLAG' })
  const search = parseResolvConf('search default.svc.cluster.local svc.cluster.local cluster.local\n').search
  t.same(namespaceFromSearch(search), { namespace: 'default', clusterDomain: 'cluster.local' })
  const table = new NameTable([e, parseRegistryEntry('other/details=198.18.0.40', 'x')], [], {
    namespace: 'default',
    clusterDomain: 'cluster.local',
    search,
  })
  t.same(table.names(), [
    'details.other',
    'details.other.svc',
    'details.other.svc.cluster.local',
    'reviews',
    'reviews.default',
    'reviews.default.svc',
    'reviews.default.svc.cluster.local',
  ])
})
