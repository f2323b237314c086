// Istio's own goldens for istio-cni (test/fixtures/istio-cni/, see its README): each configuration of
// Istio's tests, given to `sidecar-lab inpod-rules --dry-run` as flags, prints the golden line for line.
// The iptables goldens begin with Istio's state checks (`iptables-save`, `ip6tables-save`): commands, not
// rules, so --dry-run leaves them out, as `sidecar-lab iptables` does with istio-iptables' goldens.
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runInpod } from './run.js'

const fixtures = fileURLToPath(new URL('../fixtures/istio-cni/', import.meta.url))
// Istio's tests set this IPv6 probe address for the in-pod cases and the nft host case (constructTestConfig);
// the iptables host case sets the production default, fd16:9254:7127:1337:ffff:ffff:ffff:ffff, our default.
const TEST_V6 = ['--host-probe-snat-ipv6', 'e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164']
const NICS = ['--virtual-interfaces', 'fake1s0f0,fake1s0f1']

/** Istio's test cases (cni/pkg/{iptables,nftables}/common_test.go) as our flags. */
const cases: Record<string, { iptables: string[]; nftables: string[] }> = {
  default: both(['--redirect-dns', ...TEST_V6]),
  ingress: both(['--ingress', ...TEST_V6]),
  virtual_interfaces: both([...NICS, ...TEST_V6]),
  ingress_and_virtual_interfaces: both(['--ingress', ...NICS, ...TEST_V6]),
  dns_pod_enabled_and_off_globally: both(['--dns-proxy', 'enabled', ...TEST_V6]),
  dns_pod_disabled_and_on_globally: both(['--redirect-dns', '--dns-proxy', 'disabled', ...TEST_V6]),
  hostprobe: {
    iptables: ['--host', '--redirect-dns'],
    nftables: ['--host', '--redirect-dns', '--native-nftables', '--kubelet-uid', '1000', ...TEST_V6],
  },
}

function both(argv: string[]) {
  return { iptables: argv, nftables: ['--native-nftables', ...argv] }
}

const required = ['default', 'ingress', 'virtual_interfaces', 'hostprobe']

for (const backend of ['iptables', 'nftables'] as const) {
  const files = readdirSync(`${fixtures}${backend}`).filter((f) => f.endsWith('.golden'))

  t.test(`${backend}: every golden has a case, the required ones are all there`, async (t) => {
    for (const name of required) {
      t.ok(files.includes(`${name}.golden`), `${name}.golden`)
      t.ok(files.includes(`${name}_ipv6.golden`), `${name}_ipv6.golden`)
    }
    for (const f of files) t.ok(cases[f.replace(/(_ipv6)?\.golden$/, '')], `${f} has a case`)
  })

  for (const file of files) {
    const ipv6 = file.endsWith('_ipv6.golden')
    const argv = ['--dry-run', ...cases[file.replace(/(_ipv6)?\.golden$/, '')]![backend], ...(ipv6 ? ['--ipv6'] : [])]
    t.test(`${backend} ${file}: ${argv.join(' ')}`, async (t) => {
      let golden = readFileSync(`${fixtures}${backend}/${file}`, 'utf8').split('\n')
      if (backend === 'iptables') {
        t.same(golden.slice(0, 2), ['iptables-save', 'ip6tables-save'], "the golden starts with Istio's state checks")
        golden = golden.slice(2)
      }
      // Istio joins its lines with \n (iptables) or ends the nft transaction with one; we end every line.
      if (golden.at(-1) === '') golden.pop()
      const out = await runInpod(argv)
      t.equal(out.code, 0)
      t.ok(out.stdout.endsWith('\n'))
      t.same(out.stdout.slice(0, -1).split('\n'), golden)
    })
  }
}
