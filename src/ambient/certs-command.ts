// `sidecar-lab certs`: the lab's identities for a setup of the user's own: a CA (init), a workload certificate
// per service account (issue), and what a certificate says (show). `lab up --ambient` makes the same itself.
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from '../command.js'
import { CertificateError, InvalidFlagError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { quoteInput } from '../quote.js'
import { defaultCaValidity, defaultWorkloadValidity, issueWorkload, loadCa, makeCa, nameProblem, readIdentity } from './certs.js'

const COMMAND = 'sidecar-lab certs'

const help = `usage: ${COMMAND} init --dir DIR [--validity ${defaultCaValidity}] [--trust-domain DOMAIN]
       ${COMMAND} issue --dir DIR --sa NAME [--namespace default] [--validity ${defaultWorkloadValidity}]
                         [--trust-domain DOMAIN]
       ${COMMAND} show FILE

The mesh's identities for HBONE, as Istio's CA gives them to ztunnel.
  init   a self-signed root CA in DIR: root-cert.pem, root-key.pem (mode 0600)
  issue  a workload certificate signed by DIR's CA, in DIR/NAMESPACE/NAME: cert.pem, key.pem
         (0600), cert-chain.pem (the certificate, then the root) and root-cert.pem. Its identity,
         the only URI SAN, is spiffe://DOMAIN/ns/NAMESPACE/sa/NAME; an ECDSA P-256 key; serverAuth
         and clientAuth. NAME and NAMESPACE are DNS-1123 labels (a-z, 0-9, '-').
  show   the identity, validity and issuer of a certificate (PEM)
DOMAIN is the trust domain, cluster.local by default.
--validity: 90s, 30m, 24h, 7d (1s to 3650d). The keys belong to whoever runs this: run it as the
user that runs the ztunnel (root in the lab), so that only it can read them.
`

const options = {
  dir: { type: 'string', value: 'DIR' },
  sa: { type: 'string', value: 'NAME' },
  namespace: { type: 'string', value: 'NAME' },
  validity: { type: 'string', value: 'DURATION' },
  'trust-domain': { type: 'string', value: 'DOMAIN' },
  help: { type: 'boolean' },
} as const

const subcommands = ['init', 'issue', 'show']

export const certsCommand: Command = {
  name: 'certs',
  async run(argv, io) {
    const { values: v, positionals } = parseCommandArgs(argv, options, COMMAND, true)
    if (v.help) {
      io.stdout.write(help)
      return 0
    }
    const [sub, ...rest] = positionals
    if (!sub || !subcommands.includes(sub)) {
      const got = sub ? `${quoteInput(sub, 40)} is not one of` : 'give one of'
      throw new InvalidFlagError(`${COMMAND}: ${got} ${subcommands.join(', ')} (see --help)`)
    }
    const only = (flags: (keyof typeof options)[]) => {
      for (const f of Object.keys(v) as (keyof typeof options)[]) {
        if (!flags.includes(f)) throw new InvalidFlagError(`--${f} goes with ${flagOwner(f)}, not 'certs ${sub}'`)
      }
    }
    if (sub === 'show') {
      only([])
      if (rest.length !== 1) throw new InvalidFlagError(`'certs show' takes one FILE (a PEM certificate)`)
      io.stdout.write(describeCertificate(rest[0]!, readPem(rest[0]!), new Date()))
      return 0
    }
    if (rest.length) throw new InvalidFlagError(`unexpected argument ${quoteInput(rest[0]!, 80)}: 'certs ${sub}' takes only flags`)
    if (!v.dir) throw new InvalidFlagError(`'certs ${sub}' needs --dir DIR`)
    if (sub === 'init') {
      only(['dir', 'validity', 'trust-domain'])
      const ca = await makeCa(v.dir, { validity: v.validity, trustDomain: v['trust-domain'] })
      io.stdout.write(`CA made: ${ca.cert} (its key ${ca.key}, mode 0600)\n`)
      return 0
    }
    only(['dir', 'sa', 'namespace', 'validity', 'trust-domain'])
    if (!v.sa) throw new InvalidFlagError(`'certs issue' needs --sa NAME (the service account)`)
    const namespace = v.namespace ?? 'default'
    const problem = nameProblem('--sa:', v.sa) ?? nameProblem('--namespace:', namespace)
    if (problem) throw new InvalidFlagError(problem)
    const ca = loadCa(v.dir)
    const id = await issueWorkload(ca, join(v.dir, namespace, v.sa), {
      serviceAccount: v.sa,
      namespace,
      validity: v.validity,
      trustDomain: v['trust-domain'],
    })
    io.stdout.write(`${id.spiffeId}: ${id.cert} (its key ${id.key}, mode 0600; the chain ${id.chain})\n`)
    return 0
  },
}

function flagOwner(flag: string): string {
  if (flag === 'sa' || flag === 'namespace') return "'certs issue'"
  return "'certs init' or 'certs issue'"
}

function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new CertificateError(`${quoteInput(file, 200)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** 23h59m, 3d4h, 42s: the largest two units. */
function span(ms: number): string {
  const parts: string[] = []
  let rest = Math.floor(Math.abs(ms) / 1000)
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size || (parts.length === 0 && size === 1)) parts.push(`${Math.floor(rest / size)}${unit}`)
    rest %= size
  }
  return parts.slice(0, 2).join('')
}

function utc(d: Date): string {
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
}

/** `certs show`: what the certificate is, when it is valid (against now) and who signed it, as sentences. */
export function describeCertificate(file: string, pem: string, now: Date): string {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(pem)
  } catch (err) {
    throw new CertificateError(`${quoteInput(file, 200)} is not a PEM certificate: ${(err as Error).message}`)
  }
  const key = cert.publicKey.asymmetricKeyDetails
  const keyText =
    cert.publicKey.asymmetricKeyType === 'ec'
      ? `ECDSA ${key?.namedCurve === 'prime256v1' ? 'P-256' : key?.namedCurve}`
      : `${cert.publicKey.asymmetricKeyType?.toUpperCase()} ${key?.modulusLength ?? ''}`.trim()
  let what: string
  if (cert.ca) what = `a CA (${cert.subject.replace(/\n/g, ', ')})`
  else {
    try {
      what = `the identity ${readIdentity(pem)}`
    } catch (err) {
      what = `a certificate without an identity: ${(err as Error).message}`
    }
  }
  const from = new Date(cert.validFrom)
  const to = new Date(cert.validTo)
  const state =
    now < from
      ? `not valid yet: it starts in ${span(from.getTime() - now.getTime())}`
      : now >= to
        ? `expired ${span(now.getTime() - to.getTime())} ago`
        : `valid now, ${span(to.getTime() - now.getTime())} left`
  const issuer = cert.issuer.replace(/\n/g, ', ')
  const signer = cert.checkIssued(cert) && cert.verify(cert.publicKey) ? `${issuer} (self-signed)` : issuer
  return [`${file}: ${what}, ${keyText} key.`, `Valid from ${utc(from)} until ${utc(to)}: ${state}.`, `Issued by ${signer}.`, ''].join('\n')
}
