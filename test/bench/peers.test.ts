// The bench's peers list: ambient (the node's ztunnel) and the HAProxy TLS pair run in a default run, in the
// position both only, and the TLS pair's HAProxy config, with certificates from `sidecar-lab certs`, is one
// HAProxy itself accepts (haproxy -c).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

interface Peer {
  name: string
  label: string
  sidecar?: { name: string; prepare?(dir: string): void; argv(dir: string): string[] }
  ambient?: boolean
  positions: string[]
  optional?: boolean
}
const peers = (await import('../../bench/peers.mjs' as string)) as {
  peerList(o?: { nbthread?: number }): Peer[]
  haproxyTlsConfigFor(o: { nbthread?: number; certs: { ca: string; pem: string } }): string
  tlsCerts(pod: string): { ca: string; pem: string }
}

t.test('ambient and haproxy-tls: in a default run, position both only, ambient last', async (t) => {
  const list = peers.peerList({ nbthread: 1 })
  const byName = new Map(list.map((p) => [p.name, p]))
  const ambient = byName.get('ambient')
  const tls = byName.get('haproxy-tls')
  t.ok(ambient && tls, 'both are peers')
  t.same(ambient?.positions, ['both'], 'ambient: one ztunnel serves both pods')
  t.same(tls?.positions, ['both'], 'TLS pair: one end alone would speak TLS to plaintext')
  t.notOk(ambient?.optional, 'ambient runs in a default run')
  t.notOk(tls?.optional, 'the TLS pair runs in a default run')
  t.equal(ambient?.sidecar, undefined, 'ambient has no sidecar')
  t.equal(ambient?.ambient, true)
  t.equal(ambient?.label, 'ambient (ztunnel)')
  t.equal(tls?.label, 'HAProxy TLS (nbthread 1)')
  t.equal(list[list.length - 1]?.name, 'ambient', 'last: the lab is rebuilt into ambient mode and out of it')
})

t.test("the TLS pair's config: TLS on the outbound server line and the inbound listener, verified both ways", async (t) => {
  const cfg = peers.haproxyTlsConfigFor({ nbthread: 2, certs: { ca: '/c/root-cert.pem', pem: '/c/me.pem' } })
  t.match(cfg, /\n {4}server original-dst 0\.0\.0\.0 ssl verify required ca-file \/c\/root-cert\.pem crt \/c\/me\.pem\n/)
  t.match(cfg, /\n {4}bind 0\.0\.0\.0:15006 ssl crt \/c\/me\.pem verify required ca-file \/c\/root-cert\.pem\n/)
  t.match(cfg, /\n {4}bind 0\.0\.0\.0:15001\n/, 'the outbound listener takes the app plaintext')
  t.match(cfg, /\n {4}source 127\.0\.0\.6\n/, "the inbound side reaches the app as the plain peer's does")
  t.match(cfg, /nbthread 2\n/)
})

t.test("the TLS pair's config with the lab's certificates passes haproxy -c", async (t) => {
  const certs = peers.tlsCerts('productpage')
  const pem = readFileSync(certs.pem, 'utf8')
  t.match(pem, /-----BEGIN CERTIFICATE-----[^]*-----BEGIN CERTIFICATE-----[^]*-----BEGIN PRIVATE KEY-----/, 'chain, then key')
  t.match(readFileSync(certs.ca, 'utf8'), /^-----BEGIN CERTIFICATE-----/)
  const dir = mkdtempSync(join(tmpdir(), 'slt-bench-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(cfg, peers.haproxyTlsConfigFor({ certs }))
  const r = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile('haproxy', ['-c', '-f', cfg], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  )
  t.equal(r.code, 0, `haproxy -c accepts it:\n${r.out}`)
  t.same(peers.tlsCerts('productpage'), certs, 'made once, then reused')
})
