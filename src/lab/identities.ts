// The lab's mesh identities (lab up --ambient): its CA and one workload certificate per mesh pod's service
// account, in the lab's folder, made before the ztunnel starts, which presents them on HBONE (--identity-dir).
import { dirname, join } from 'node:path'
import { issueWorkload, makeCa, spiffeId, type WorkloadIdentity } from '../ambient/certs.js'
import { labDir } from './state.js'

const namespace = 'default'

/** Where the lab's CA is: root-cert.pem, root-key.pem. */
export function labCaDir(lab: string): string {
  return join(labDir(lab), 'identity', 'ca')
}

/** The folder of every identity, as the ztunnel's --identity-dir takes it: NAMESPACE/SERVICE_ACCOUNT/cert.pem. */
export function labIdentityDir(lab: string): string {
  return join(labDir(lab), 'identity')
}

/** The files of one service account's identity in the lab (the lab's pods each run as the service account of their name). */
export function labIdentityFiles(lab: string, serviceAccount: string): WorkloadIdentity {
  const dir = join(labIdentityDir(lab), namespace, serviceAccount)
  return {
    cert: join(dir, 'cert.pem'),
    key: join(dir, 'key.pem'),
    chain: join(dir, 'cert-chain.pem'),
    root: join(dir, 'root-cert.pem'),
    spiffeId: spiffeId('cluster.local', namespace, serviceAccount),
  }
}

/** A fresh CA for the lab and a certificate (24 hours, as Istio's) for each service account; their files. */
export async function makeLabIdentities(lab: string, serviceAccounts: string[]): Promise<WorkloadIdentity[]> {
  const ca = await makeCa(labCaDir(lab), { replace: true })
  const made: WorkloadIdentity[] = []
  for (const sa of serviceAccounts) {
    const files = labIdentityFiles(lab, sa)
    made.push(await issueWorkload(ca, dirname(files.cert), { namespace, serviceAccount: sa }))
  }
  return made
}
