// The lab's identities made for real with openssl and checked from outside: `openssl verify` against the CA,
// the URI SAN read back with node:crypto, the key files' modes, dates in the past and the future for the
// fault tests of HBONE, a certificate from another CA refused, bad names refused with their message.
import { execFile } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { issueWorkload, loadCa, makeCa, readIdentity } from '../../src/ambient/certs.js'
import { describeCertificate } from '../../src/ambient/certs-command.js'
import { labIdentityFiles, makeLabIdentities } from '../../src/lab/identities.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'slt-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** openssl verify's exit code and output (both streams: it reports failures on either). */
function verify(caFile: string, certFile: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('openssl', ['verify', '-CAfile', caFile, certFile], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })
    })
  })
}

const mode = (file: string) => statSync(file).mode & 0o777
const hour = 3_600_000

t.test('a CA and two workloads: each verifies, carries its SPIFFE id as the only SAN, key 0600', async (t) => {
  const dir = tempDir(t)
  const ca = await makeCa(join(dir, 'ca'))
  t.equal(mode(ca.key), 0o600, 'the CA key is 0600')
  t.equal(statSync(ca.key).uid, process.getuid!(), 'owned by whoever made it')
  const root = new X509Certificate(readFileSync(ca.cert))
  t.ok(root.ca, 'the root is a CA')
  t.equal(root.issuer, root.subject, 'self-signed')
  for (const sa of ['productpage', 'reviews']) {
    const id = await issueWorkload(ca, join(dir, sa), { serviceAccount: sa })
    t.equal(id.spiffeId, `spiffe://cluster.local/ns/default/sa/${sa}`)
    const v = await verify(ca.cert, id.cert)
    t.equal(v.code, 0, `openssl verify ${sa}: ${v.out}`)
    t.equal(v.out, `${id.cert}: OK\n`)
    const cert = new X509Certificate(readFileSync(id.cert))
    t.equal(cert.subjectAltName, `URI:spiffe://cluster.local/ns/default/sa/${sa}`, 'the URI SAN, and nothing else')
    t.equal(readIdentity(readFileSync(id.cert)), id.spiffeId)
    t.notOk(cert.ca)
    t.equal(cert.publicKey.asymmetricKeyType, 'ec')
    t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'ECDSA P-256')
    t.same(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'extended key usage: serverAuth, clientAuth')
    t.ok(cert.checkIssued(root), 'issued by the root')
    t.equal(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime(), 24 * hour, '24 hours, as Istio')
    t.equal(mode(id.key), 0o600, `${sa}'s key is 0600`)
    t.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(id.key))), 'the key is the certificate’s')
    t.equal(readFileSync(id.chain, 'utf8'), readFileSync(id.cert, 'utf8') + readFileSync(ca.cert, 'utf8'), 'chain: cert, root')
    t.equal(readFileSync(id.root, 'utf8'), readFileSync(ca.cert, 'utf8'))
  }
})

t.test('certificates already expired or not yet valid, for the fault tests', async (t) => {
  const dir = tempDir(t)
  const ca = await makeCa(join(dir, 'ca'), { notBefore: new Date(Date.now() - 72 * hour) })
  const now = Date.now()
  const expired = await issueWorkload(ca, join(dir, 'old'), {
    serviceAccount: 'reviews',
    notBefore: new Date(now - 48 * hour),
    notAfter: new Date(now - 24 * hour),
  })
  const cert = new X509Certificate(readFileSync(expired.cert))
  t.ok(new Date(cert.validTo).getTime() < now, `validTo ${cert.validTo} is past`)
  let v = await verify(ca.cert, expired.cert)
  t.not(v.code, 0)
  t.match(v.out, /certificate has expired/)

  const early = await issueWorkload(ca, join(dir, 'early'), { serviceAccount: 'reviews', notBefore: new Date(now + hour) })
  const later = new X509Certificate(readFileSync(early.cert))
  t.ok(new Date(later.validFrom).getTime() > now, `validFrom ${later.validFrom} is ahead`)
  t.equal(new Date(later.validTo).getTime() - new Date(later.validFrom).getTime(), 24 * hour)
  v = await verify(ca.cert, early.cert)
  t.not(v.code, 0)
  t.match(v.out, /certificate is not yet valid/)

  const short = await issueWorkload(ca, join(dir, 'short'), { serviceAccount: 'reviews', validity: '90s' })
  const s = new X509Certificate(readFileSync(short.cert))
  t.equal(new Date(s.validTo).getTime() - new Date(s.validFrom).getTime(), 90_000, '--validity 90s')
})

t.test('a certificate from another CA does not verify', async (t) => {
  const dir = tempDir(t)
  const ours = await makeCa(join(dir, 'ours'))
  const theirs = await makeCa(join(dir, 'theirs'))
  const stranger = await issueWorkload(theirs, join(dir, 'stranger'), { serviceAccount: 'reviews' })
  t.equal((await verify(theirs.cert, stranger.cert)).code, 0, 'its own CA takes it')
  const v = await verify(ours.cert, stranger.cert)
  t.not(v.code, 0)
  t.match(v.out, /unable to get local issuer certificate/)
})

t.test('bad names, validities and folders are refused, naming the problem, before anything is written', async (t) => {
  const dir = tempDir(t)
  const ca = await makeCa(join(dir, 'ca'))
  const label = "at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (a Kubernetes DNS-1123 label)"
  const cases: [Parameters<typeof issueWorkload>[2], string][] = [
    [{ serviceAccount: 'Bad_Name' }, `service account "Bad_Name" is not a valid name: ${label}`],
    [{ serviceAccount: '-reviews' }, `service account "-reviews" is not a valid name: ${label}`],
    [{ serviceAccount: 'a'.repeat(64) }, `service account "${'a'.repeat(64)}" is not a valid name: ${label}`],
    [{ serviceAccount: '' }, `service account "" is not a valid name: ${label}`],
    [{ serviceAccount: 'reviews', namespace: 'Prod' }, `namespace "Prod" is not a valid name: ${label}`],
    [
      { serviceAccount: 'reviews', trustDomain: 'Cluster Local' },
      `trust domain "Cluster Local" is not valid: lowercase a-z, 0-9, '.', '-' and '_' only`,
    ],
    [{ serviceAccount: 'reviews', validity: 'forever' }, 'validity "forever" is not a duration from 1s to 3650d (90s, 30m, 24h, 7d)'],
    [{ serviceAccount: 'reviews', validity: '0s' }, 'validity "0s" is not a duration from 1s to 3650d (90s, 30m, 24h, 7d)'],
  ]
  for (const [options, message] of cases) {
    const out = join(dir, 'w')
    await t.rejects(issueWorkload(ca, out, options), { code: 'SIDECAR_ERR_CERTIFICATE', message }, message)
    t.notOk(existsSync(out), 'nothing written')
  }
  const file = join(dir, 'a-file')
  writeFileSync(file, '')
  await t.rejects(issueWorkload(ca, join(file, 'w'), { serviceAccount: 'reviews' }), {
    message: `cannot write certificates to ${JSON.stringify(join(file, 'w'))}: ENOTDIR`,
  })
  await t.rejects(makeCa(join(file, 'ca')), { message: `cannot write certificates to ${JSON.stringify(join(file, 'ca'))}: ENOTDIR` })
  await t.rejects(makeCa(ca.dir), {
    message: `${JSON.stringify(ca.dir)} already has a CA (root-key.pem): remove it or choose another folder`,
  })
  t.throws(() => loadCa(join(dir, 'none')), { message: /has no CA \(.*root-cert\.pem is missing\): make one with 'certs init' first$/ })
  t.throws(() => readIdentity(readFileSync(ca.cert)), { message: 'the certificate has no SPIFFE identity (no spiffe:// URI SAN)' })
})

t.test('certs show: identity, validity against now, issuer', async (t) => {
  const dir = tempDir(t)
  const ca = await makeCa(join(dir, 'ca'), { notBefore: new Date('2026-01-01T00:00:00Z'), validity: '3650d' })
  const id = await issueWorkload(ca, join(dir, 'w'), { serviceAccount: 'reviews', notBefore: new Date('2026-03-01T12:00:00Z') })
  const pem = readFileSync(id.cert, 'utf8')
  const head = 'w.pem: the identity spiffe://cluster.local/ns/default/sa/reviews, ECDSA P-256 key.\n'
  const dates = 'Valid from 2026-03-01 12:00:00 UTC until 2026-03-02 12:00:00 UTC'
  const issuer = 'Issued by O=cluster.local, CN=sidecar-lab root CA.\n'
  t.equal(describeCertificate('w.pem', pem, new Date('2026-03-01T13:30:00Z')), `${head}${dates}: valid now, 22h30m left.\n${issuer}`)
  t.equal(describeCertificate('w.pem', pem, new Date('2026-03-04T12:00:05Z')), `${head}${dates}: expired 2d5s ago.\n${issuer}`)
  t.equal(
    describeCertificate('w.pem', pem, new Date('2026-03-01T11:59:00Z')),
    `${head}${dates}: not valid yet: it starts in 1m.\n${issuer}`,
  )
  t.match(
    describeCertificate('root.pem', readFileSync(ca.cert, 'utf8'), new Date('2026-03-01T00:00:00Z')),
    /^root\.pem: a CA \(O=cluster\.local, CN=sidecar-lab root CA\), ECDSA P-256 key\.\n.*\nIssued by O=cluster\.local, CN=sidecar-lab root CA \(self-signed\)\.\n$/,
  )
  t.throws(() => describeCertificate('x.pem', 'not a certificate', new Date()), { message: /^"x\.pem" is not a PEM certificate: / })
})

t.test('lab up --ambient: a CA and one identity per mesh service account where labIdentityFiles says', async (t) => {
  const state = tempDir(t)
  const before = process.env.SIDECAR_LAB_STATE_DIR
  process.env.SIDECAR_LAB_STATE_DIR = state
  t.teardown(() => (before === undefined ? delete process.env.SIDECAR_LAB_STATE_DIR : (process.env.SIDECAR_LAB_STATE_DIR = before)))
  const made = await makeLabIdentities('slt-certs', ['productpage', 'reviews'])
  for (const [i, sa] of ['productpage', 'reviews'].entries()) {
    const files = labIdentityFiles('slt-certs', sa)
    t.same(made[i], files)
    t.ok(files.cert.startsWith(join(state, 'slt-certs') + '/'), 'in the lab folder')
    t.equal((await verify(files.root, files.cert)).code, 0)
    t.equal(readIdentity(readFileSync(files.cert)), `spiffe://cluster.local/ns/default/sa/${sa}`)
    t.equal(mode(files.key), 0o600)
  }
  // a second `up` over what is left makes a new CA rather than refusing
  await makeLabIdentities('slt-certs', ['reviews'])
  const files = labIdentityFiles('slt-certs', 'reviews')
  t.equal((await verify(files.root, files.cert)).code, 0)
})

t.test('workloads issued at the same time from one CA each get their own key and certificate', async (t) => {
  const dir = tempDir(t)
  const ca = await makeCa(join(dir, 'ca'))
  const names = ['a', 'b', 'c', 'd']
  const ids = await Promise.all(names.map((sa) => issueWorkload(ca, join(dir, sa), { serviceAccount: sa })))
  for (const [i, id] of ids.entries()) {
    const cert = new X509Certificate(readFileSync(id.cert))
    t.equal(readIdentity(readFileSync(id.cert)), `spiffe://cluster.local/ns/default/sa/${names[i]}`)
    t.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(id.key))), `${names[i]}: the key is the certificate's`)
    t.equal((await verify(ca.cert, id.cert)).code, 0)
  }
})
