// Certificates for the HBONE tests, made with openssl's CLI in a temp folder (removed at teardown): a lab CA
// and workload certificates (ECDSA P-256, URI SAN spiffe://cluster.local/ns/default/sa/NAME), a second CA, and
// an expired workload certificate (`openssl ca -startdate/-enddate`: OpenSSL 3.0's x509 cannot back-date).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Pem {
  cert: string
  key: string
  ca: string
  /** paths of the same, for the Python peer */
  files: { cert: string; key: string; ca: string }
}

export const spiffe = (sa: string): string => `spiffe://cluster.local/ns/default/sa/${sa}`

export class LabCerts {
  readonly dir = mkdtempSync(join(tmpdir(), 'hbone-certs-'))

  constructor(t: { teardown(fn: () => unknown): void }) {
    t.teardown(() => rmSync(this.dir, { recursive: true, force: true }))
    this.#ca('ca')
    this.#ca('other-ca')
  }

  /** A workload certificate signed by `ca` (valid a day, or expired yesterday). */
  workload(name: string, opts: { ca?: string; sa?: string; expired?: boolean; san?: string } = {}): Pem {
    const ca = opts.ca ?? 'ca'
    const base = join(this.dir, name)
    const san = opts.san ?? `URI:${spiffe(opts.sa ?? name)}`
    this.#openssl(
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
        '-subj',
        `/O=sidecar-lab/CN=${name}`,
        '-addext',
        `subjectAltName=${san}`,
      ]),
    )
    if (opts.expired) this.#expired(ca, base)
    else {
      this.#openssl(
        ['x509', '-req', '-in', `${base}.csr`, '-CA', join(this.dir, `${ca}.crt`), '-CAkey', join(this.dir, `${ca}.key`)].concat([
          '-CAcreateserial',
          '-days',
          '1',
          '-copy_extensions',
          'copy',
          '-out',
          `${base}.crt`,
        ]),
      )
    }
    const files = { cert: `${base}.crt`, key: `${base}.key`, ca: join(this.dir, `${ca}.crt`) }
    return { cert: read(files.cert), key: read(files.key), ca: read(files.ca), files }
  }

  #ca(name: string): void {
    const base = join(this.dir, name)
    this.#openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'].concat(
        ['-keyout', `${base}.key`, '-out', `${base}.crt`, '-subj', `/O=sidecar-lab/CN=${name}`],
        ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      ),
    )
  }

  #expired(ca: string, base: string): void {
    const db = join(this.dir, `${ca}-db`)
    writeFileSync(`${db}.index`, '')
    writeFileSync(`${db}.serial`, '1000\n')
    const conf = `${base}.cnf`
    writeFileSync(
      conf,
      [
        '[ca]',
        'default_ca = lab',
        '[lab]',
        `database = ${db}.index`,
        `serial = ${db}.serial`,
        `new_certs_dir = ${this.dir}`,
        'default_md = sha256',
        'policy = anything',
        'copy_extensions = copy',
        'unique_subject = no',
        '[anything]',
        'organizationName = optional',
        'commonName = optional',
        '',
      ].join('\n'),
    )
    this.#openssl(
      ['ca', '-batch', '-notext', '-config', conf, '-cert', join(this.dir, `${ca}.crt`), '-keyfile', join(this.dir, `${ca}.key`)].concat([
        '-startdate',
        '20200101000000Z',
        '-enddate',
        '20200102000000Z',
        '-in',
        `${base}.csr`,
        '-out',
        `${base}.crt`,
      ]),
    )
  }

  #openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] })
  }
}

function read(path: string): string {
  return readFileSync(path, 'utf8')
}
