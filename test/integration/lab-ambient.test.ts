// The lab in ambient mode: no sidecar anywhere, the in-pod rules in productpage and reviews, one ztunnel in the
// node's namespace. The app sees its real caller (not 127.0.0.6), DNS is answered through 15053 by the ztunnel,
// `lab status` names the ztunnel as the owner of the pods' listeners, and `lab down` leaves nothing.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { execIn, listNetns } from '../../src/sys/netns.js'
import { alive } from '../../src/sys/exec.js'
import { readState } from '../../src/lab/state.js'
import { labIdentityFiles } from '../../src/lab/identities.js'
import { readIdentity } from '../../src/ambient/certs.js'
import { repoRoot } from '../helpers/pods.js'
import { rootOnly } from '../helpers/root.js'
import { eventually } from '../helpers/wait.js'

function cli(args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [join(repoRoot, 'dist/cli.js'), ...args], { timeout, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function get(lab: string, from: string, url: string): Promise<Record<string, unknown>> {
  const r = await cli(['lab', 'exec', from, '--lab', lab, '--', 'curl', '-s', '--max-time', '5', url])
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>
  } catch {
    return { code: r.code, stdout: r.stdout, stderr: r.stderr }
  }
}

/** dig's answer line for a name, asked from a pod (the TTL tells who answered: the lab's dnsmasq says 10). */
async function answer(lab: string, from: string, name: string): Promise<string> {
  const r = await cli(['lab', 'exec', from, '--lab', lab, '--', 'dig', '+noall', '+answer', '+time=2', '+tries=1', name])
  return r.stdout.trim()
}

t.test('lab up --ambient: the ztunnel serves both mesh pods from the node', rootOnly(), async (t) => {
  const lab = `slta${process.pid % 10000}`
  t.teardown(() => cli(['lab', 'down', '--lab', lab]))
  const upped = await cli(['lab', 'up', '--ambient', '--dns-capture', '--lab', lab])
  t.equal(upped.code, 0, upped.stderr)
  t.match(upped.stdout, /ambient mode \(no sidecars\)/)
  const state = readState(lab)!
  const ztunnel = state.ambient?.ztunnel
  t.ok(alive(ztunnel), 'the ztunnel runs')
  // the identities HBONE will use: one per mesh pod's service account, signed by the lab's CA, keys 0600
  for (const sa of ['productpage', 'reviews']) {
    const files = labIdentityFiles(lab, sa)
    const verified = await new Promise<string>((resolve) =>
      execFile('openssl', ['verify', '-CAfile', files.root, files.cert], (err, out, errOut) => resolve(err ? errOut : out)),
    )
    t.equal(verified, `${files.cert}: OK\n`, `${sa}: openssl verify`)
    t.equal(readIdentity(readFileSync(files.cert)), `spiffe://cluster.local/ns/default/sa/${sa}`)
    t.equal(statSync(files.key).mode & 0o777, 0o600, `${sa}: the key is 0600`)
  }
  t.notOk(existsSync(labIdentityFiles(lab, 'ratings').cert), 'ratings is out of the mesh: no identity')

  t.match(
    await get(lab, 'productpage', 'http://198.18.0.20:9080/'),
    { service: 'reviews', peer: '198.18.0.10', local: '198.18.0.20:9080' },
    "IPv4: reviews sees productpage's own address (the ztunnel spoofs it), not 127.0.0.6",
  )
  t.match(
    await get(lab, 'productpage', 'http://[2001:2::20]:9080/'),
    { service: 'reviews', peer: '2001:2::10' },
    "IPv6: reviews sees productpage's own address",
  )
  t.match(
    await get(lab, 'ratings', 'http://198.18.0.20:9080/'),
    { service: 'reviews', peer: '198.18.0.30', upstream: { service: 'ratings' } },
    'from outside the mesh: inbound through the ztunnel, then reviews calls ratings through it',
  )
  const access = await eventually(() => {
    const lines = readFileSync(join('/run/sidecar-lab', lab, 'ztunnel-access.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
    return lines.length >= 4 && lines
  })
  t.ok(
    access.some((l) => l.includes('src.workload="productpage"') && l.includes('direction="outbound"')),
    'an outbound line for productpage',
  )
  t.ok(
    access.some((l) => l.includes('dst.workload="reviews"') && l.includes('direction="inbound"')),
    'an inbound line for reviews',
  )
  // productpage→reviews went over HBONE (the workload table lab up gives the ztunnel), reviews→ratings plain
  const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`
  t.ok(
    access.some(
      (l) =>
        l.includes('direction="outbound"') &&
        l.includes('dst.addr=198.18.0.20:15008') &&
        l.includes(`src.identity="${spiffe('productpage')}"`) &&
        l.includes(`dst.identity="${spiffe('reviews')}"`),
    ),
    'productpage→reviews: outbound to 15008 with both identities',
  )
  const toRatings = access.filter((l) => l.includes('direction="outbound"') && l.includes('dst.addr=198.18.0.30:9080'))
  t.ok(toRatings.length > 0 && toRatings.every((l) => !l.includes('identity=')), 'reviews→ratings (out of the mesh): plain, no identity')

  // kubelet's probe from the node: SNATed to 169.254.7.127 on the node, let past the ztunnel in the pod.
  const accessBefore = readFileSync(join('/run/sidecar-lab', lab, 'ztunnel-access.log'), 'utf8')
  const probe = await execIn(state.bridgeNs, ['curl', '-s', '--max-time', '5', 'http://198.18.0.10:9080/'])
  t.match(
    JSON.parse(probe.stdout),
    { service: 'productpage', peer: '169.254.7.127' },
    "a probe from the node reaches the app as istio-cni's probe address",
  )
  t.notMatch(
    readFileSync(join('/run/sidecar-lab', lab, 'ztunnel-access.log'), 'utf8').slice(accessBefore.length),
    /src\.addr=169\.254\.7\.127/,
    'and not through the ztunnel',
  )

  // The ztunnel's table answers the mesh's names (Istio's TTL 30); other names go to the lab's server (TTL 10).
  t.match(
    await answer(lab, 'productpage', 'reviews.default.svc.cluster.local'),
    /\s30\s+IN\s+A\s+198\.18\.0\.20$/m,
    'answered through 15053',
  )
  t.match(await answer(lab, 'productpage', 'db.lab.test'), /\s10\s+IN\s+A\s+198\.18\.0\.30$/m, 'forwarded by the ztunnel')

  const status = await cli(['lab', 'status', '--json', '--lab', lab])
  const s = JSON.parse(status.stdout) as {
    ambient: { ztunnel: { pid: number; alive: boolean } }
    pods: {
      name: string
      inpodSockets?: { proto: string; port: number; pid: number }[]
      hbone?: { identity: string; sessions: { via: string; destination: string }[]; inbound: { tunnels: number } } | null
    }[]
  }
  t.same(s.ambient.ztunnel.pid, ztunnel)
  for (const name of ['productpage', 'reviews']) {
    const socks = s.pods.find((p) => p.name === name)!.inpodSockets ?? []
    t.same([...new Set(socks.map((x) => x.port))], [15001, 15006, 15008, 15053], `${name}: the four ports in the pod`)
    t.ok(socks.length > 0 && socks.every((x) => x.pid === ztunnel), `${name}: all owned by the ztunnel`)
  }
  t.notOk(s.pods.find((p) => p.name === 'ratings')!.inpodSockets, 'ratings is not in the mesh')
  // the identities and the pooled session productpage's request left (released only after 5 minutes unused)
  const hbone = (name: string) => s.pods.find((p) => p.name === name)!.hbone
  t.equal(hbone('productpage')?.identity, spiffe('productpage'), "status: productpage's identity")
  // (the test's requests went to reviews over IPv4 and IPv6: one session each)
  t.same(
    hbone('productpage')
      ?.sessions.map((x) => `${x.via} ${x.destination}`)
      .sort(),
    [`198.18.0.20:15008 ${spiffe('reviews')}`, `[2001:2::20]:15008 ${spiffe('reviews')}`],
    'status: productpage pools an HBONE session to reviews per address family',
  )
  t.ok((hbone('reviews')?.inbound.tunnels ?? 0) >= 1, "status: reviews' 15008 took the tunnel")
  const text = await cli(['lab', 'status', '--lab', lab])
  // as prose, wrapped to the terminal: compare with the line breaks taken out
  const prose = text.stdout.replace(/\s+/g, ' ')
  t.match(prose, /productpage: listening on 15001\/tcp, 15006\/tcp, 15008\/tcp, 15053 inside the pod/)
  t.match(prose, /names their owner as the ztunnel \(pid \d+\), a process that runs outside the pod's namespace/)
  t.match(
    prose,
    /productpage: identity spiffe:\/\/cluster\.local\/ns\/default\/sa\/productpage; HBONE sessions pooled: (?:[^;]*; )?198\.18\.0\.20:15008 \(spiffe:\/\/cluster\.local\/ns\/default\/sa\/reviews\), 0 tunnels on it now/,
  )

  const down = await cli(['lab', 'down', '--lab', lab])
  t.equal(down.code, 0, down.stderr)
  t.notOk(alive(ztunnel), 'the ztunnel is stopped')
  t.same(await listNetns(`${lab}-`), [], 'no namespace left')
  t.notOk(existsSync(join('/run/sidecar-lab', lab)), 'no state left')
})
