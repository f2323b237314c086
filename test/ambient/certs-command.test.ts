// `sidecar-lab certs` as a user meets it: init, issue and show end to end through dist/cli.js, the help under
// 100 columns, and every refusal with exit 2, its message, and nothing on stdout. Without NODE_OPTIONS: tap's
// would have the child write coverage files.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../helpers/pods.js'

const dir = mkdtempSync(join(tmpdir(), 'slt-certs-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function cli(args: string[], env: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'env',
      ['-u', 'NODE_OPTIONS', ...env, process.execPath, join(repoRoot, 'dist/cli.js'), ...args],
      { timeout: 20_000, cwd: repoRoot },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

t.test('init, issue, show', async (t) => {
  const ca = join(dir, 'mesh')
  let r = await cli(['certs', 'init', '--dir', ca])
  t.equal(r.stderr, '')
  t.equal(r.stdout, `CA made: ${ca}/root-cert.pem (its key ${ca}/root-key.pem, mode 0600)\n`)
  r = await cli(['certs', 'issue', '--dir', ca, '--sa', 'ratings', '--namespace', 'shop', '--validity', '2h'])
  const w = join(ca, 'shop', 'ratings')
  t.equal(
    r.stdout,
    `spiffe://cluster.local/ns/shop/sa/ratings: ${w}/cert.pem (its key ${w}/key.pem, mode 0600; the chain ${w}/cert-chain.pem)\n`,
  )
  t.equal(statSync(join(w, 'key.pem')).mode & 0o777, 0o600)
  r = await cli(['certs', 'show', join(w, 'cert.pem')])
  t.equal(r.code, 0)
  const lines = r.stdout.split('\n')
  t.equal(lines[0], `${w}/cert.pem: the identity spiffe://cluster.local/ns/shop/sa/ratings, ECDSA P-256 key.`)
  t.match(lines[1], /^Valid from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: valid now, 1h59m left\.$/)
  t.equal(lines[2], 'Issued by O=cluster.local, CN=sidecar-lab root CA.')
  r = await cli(['certs', 'init', '--dir', ca])
  t.equal(r.code, 2)
  t.equal(r.stderr, `error: ${JSON.stringify(ca)} already has a CA (root-key.pem): remove it or choose another folder\n`)
})

t.test('the help fits 100 columns', async (t) => {
  const r = await cli(['certs', '--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /^usage: sidecar-lab certs init --dir DIR/)
  t.same(
    r.stdout.split('\n').filter((l) => l.length >= 100),
    [],
  )
  const top = await cli(['--help'])
  t.match(top.stdout, /\n {2}certs +the mesh's identities for HBONE/)
})

const label = "at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (a Kubernetes DNS-1123 label)"
const empty = join(dir, 'empty')
const cases: [string[], string][] = [
  [['certs'], 'error: sidecar-lab certs: give one of init, issue, show (see --help)\n'],
  [['certs', 'renew'], 'error: sidecar-lab certs: "renew" is not one of init, issue, show (see --help)\n'],
  [['certs', 'init'], "error: 'certs init' needs --dir DIR\n"],
  [['certs', 'init', '--dir'], 'error: --dir: give a value (--dir DIR)\n'],
  [['certs', 'init', '--dir', empty, '--sa', 'x'], "error: --sa goes with 'certs issue', not 'certs init'\n"],
  [['certs', 'init', '--dir', empty, '--validity', '1y'], 'error: validity "1y" is not a duration from 1s to 3650d (90s, 30m, 24h, 7d)\n'],
  [['certs', 'issue', '--dir', empty], "error: 'certs issue' needs --sa NAME (the service account)\n"],
  [['certs', 'issue', '--dir', empty, '--sa', 'Bad_Name'], `error: --sa: "Bad_Name" is not a valid name: ${label}\n`],
  [['certs', 'issue', '--dir', empty, '--sa', 'ok', '--namespace', 'a.b'], `error: --namespace: "a.b" is not a valid name: ${label}\n`],
  [
    ['certs', 'issue', '--dir', empty, '--sa', 'ok'],
    `error: ${JSON.stringify(empty)} has no CA (${empty}/root-cert.pem is missing): make one with 'certs init' first\n`,
  ],
  [['certs', 'issue', 'stray', '--dir', empty], `error: unexpected argument "stray": 'certs issue' takes only flags\n`],
  [['certs', 'show'], "error: 'certs show' takes one FILE (a PEM certificate)\n"],
  [['certs', 'show', join(dir, 'nope.pem')], `error: ${JSON.stringify(join(dir, 'nope.pem'))}: ENOENT\n`],
  [['certs', 'show', '/etc/hostname', '--dir', dir], "error: --dir goes with 'certs init' or 'certs issue', not 'certs show'\n"],
  [['certs', 'init', '--bogus'], "error: unknown flag --bogus for 'sidecar-lab certs' (see 'node dist/cli.js certs --help')\n"],
]
for (const [argv, stderr] of cases) {
  t.test(argv.join(' '), async (t) => {
    const r = await cli(argv)
    t.equal(r.stderr, stderr)
    t.equal(r.code, 2)
    t.equal(r.stdout, '')
    t.notOk(existsSync(empty), 'nothing made')
  })
}

t.test('without openssl on PATH, the error says to install it', async (t) => {
  const r = await cli(['certs', 'init', '--dir', join(dir, 'no-openssl')], [`PATH=${join(dir, 'no-such-bin')}`])
  t.equal(r.stderr, 'error: openssl not found on PATH: install openssl (apt-get install openssl)\n')
  t.equal(r.code, 2)
})
