// The Docker form of a pod, the way Kubernetes builds one: a holder container owns the pod's network
// namespace, and the init step, the sidecar and the app are containers that join it. The namespace is linked
// into /run/netns under the lab's usual name, so the veths, the bridge, `lab exec`, `lab status` and
// `trace` reach it unchanged.
import { existsSync } from 'node:fs'
import { DockerError } from '../errors.js'
import { run, type RunOptions } from '../sys/exec.js'
import { deleteNetns, execIn, netnsExists } from '../sys/netns.js'
import { podDir, type LabState } from './state.js'

/** Built by scripts/docker-image.sh from the top-level Dockerfile. */
export const labImage = process.env.SIDECAR_LAB_IMAGE ?? 'sidecar-lab:latest'
/** Where the Dockerfile puts the built CLI and the lab's app. */
export const imageCli = '/opt/sidecar-lab/dist/cli.js'
export const imageAppServer = '/opt/sidecar-lab/dist/lab/app-server.js'
/** Every container of a lab carries it, so `down` finds them even when the state file is gone. */
const labLabel = 'sidecar-lab.lab'
const dockerSocket = '/var/run/docker.sock'

export type Role = 'sidecar' | 'app'

function docker(args: string[], options: RunOptions = {}) {
  return run('docker', args, { timeoutMs: 120_000, ...options })
}

function labels(lab: string, pod: string, role: string): string[] {
  return ['--label', `${labLabel}=${lab}`, '--label', `sidecar-lab.pod=${pod}`, '--label', `sidecar-lab.role=${role}`]
}

function holderOf(state: LabState, pod: string): string {
  const holder = state.pods[pod]?.containers?.holder
  if (!holder) throw new DockerError(`pod ${pod} of lab ${state.lab} has no holder container: run 'lab down', then 'lab up --docker'`)
  return holder
}

/** Fails early, with the fix, when there is no engine or no image. */
export async function requireImage(): Promise<void> {
  const info = await docker(['info', '--format', '{{.ServerVersion}}'], { allowFailure: true }).catch(() => undefined)
  if (!info || info.code !== 0)
    throw new DockerError(
      `no Docker engine answers: run 'bash scripts/docker-image.sh' (installs docker.io, starts dockerd, builds ${labImage})`,
    )
  const image = await docker(['image', 'inspect', '--format', '{{.Id}}', labImage], { allowFailure: true })
  if (image.code !== 0) throw new DockerError(`image ${labImage} is missing: run 'bash scripts/docker-image.sh' (after npm ci)`)
}

/** The pod's holder container, its network namespace linked into /run/netns as `ns`. */
export async function addPodHolder(state: LabState, pod: string): Promise<void> {
  const p = state.pods[pod]!
  const name = `${state.lab}-${pod}`
  // Docker turns IPv6 off in a namespace whose network is not IPv6-enabled; the lab's pods are dual-stack.
  const ipv6 = ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0', '--sysctl', 'net.ipv6.conf.default.disable_ipv6=0']
  const id = await docker([
    'run',
    '-d',
    '--network',
    'none',
    '--name',
    name,
    '--hostname',
    pod,
    ...ipv6,
    ...labels(state.lab, pod, 'holder'),
    '--entrypoint',
    'sleep',
    labImage,
    'infinity',
  ])
  p.containers = { holder: id.stdout.trim() }
  const pid = (await docker(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim()
  if (netnsExists(p.ns)) await deleteNetns(p.ns)
  // A bind mount of /proc/PID/ns/net, as `ip netns add` makes for a namespace of its own.
  await run('ip', ['netns', 'attach', p.ns, pid])
  await execIn(p.ns, ['ip', 'link', 'set', 'lo', 'up'])
}

/** The init container: the rule generator with NET_ADMIN in the pod's namespace, removed when done. */
export async function runInit(state: LabState, pod: string, args: string[]): Promise<string> {
  const r = await docker([
    'run',
    '--rm',
    '--network',
    `container:${holderOf(state, pod)}`,
    '--cap-add',
    'NET_ADMIN',
    '--cap-add',
    'NET_RAW',
    ...labels(state.lab, pod, 'init'),
    labImage,
    'iptables',
    ...args,
  ])
  return r.stdout.trim()
}

/**
 * A long-running container in the pod's namespace as `user`. Its output goes to logFile in the pod's folder,
 * bind-mounted at the same path, so `lab logs` and the readiness checks read it as for a process.
 * Returns its process's pid on the host, which the lab tracks like any other.
 */
export async function startContainer(
  state: LabState,
  pod: string,
  role: Role,
  argv: string[],
  logFile: string,
  user: { uid: number; gid: number },
  dockerArgs: string[] = [],
): Promise<number> {
  const dir = podDir(state.lab, pod)
  const name = `${state.lab}-${pod}-${role}`
  const r = await docker([
    'run',
    '-d',
    '--network',
    `container:${holderOf(state, pod)}`,
    '--name',
    name,
    '--user',
    `${user.uid}:${user.gid}`,
    '-v',
    `${dir}:${dir}`,
    ...resolvMount(state, pod),
    '-e',
    `LOG=${logFile}`,
    ...dockerArgs,
    ...labels(state.lab, pod, role),
    '--entrypoint',
    'sh',
    labImage,
    '-c',
    'exec "$@" >>"$LOG" 2>&1',
    'sh',
    ...argv,
  ])
  state.pods[pod]!.containers = { ...state.pods[pod]!.containers, [role]: r.stdout.trim() }
  const pid = Number((await docker(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim())
  if (!pid) throw new DockerError(`container ${name} exited at once; its log: ${logFile}`)
  return pid
}

/**
 * The pod's resolv.conf (src/lab/dns.ts writes it for `ip netns exec`) over the container's own: a container
 * joining the holder's network would otherwise get Docker's copy of the host's. Docker leaves a user's mount
 * of /etc/resolv.conf alone.
 */
function resolvMount(state: LabState, pod: string): string[] {
  const file = `/etc/netns/${state.pods[pod]!.ns}/resolv.conf`
  return existsSync(file) ? ['-v', `${file}:/etc/resolv.conf:ro`] : []
}

async function containersOf(lab: string, format: string): Promise<string[]> {
  // No socket, no engine: then there are no containers to list either, and `down` must still work.
  if (!existsSync(dockerSocket)) return []
  const r = await docker(['ps', '-a', '--filter', `label=${labLabel}=${lab}`, '--format', format], {
    allowFailure: true,
    timeoutMs: 30_000,
  }).catch(() => undefined)
  return r?.code === 0 ? r.stdout.split('\n').filter(Boolean) : []
}

/** Removes every container of the lab (by label, so also after a crash that lost the state). */
export async function removeContainers(lab: string): Promise<string[]> {
  const names = await containersOf(lab, '{{.Names}}')
  if (names.length) await docker(['rm', '-f', ...names], { allowFailure: true })
  return names
}

/** `lab status` lines: each container with its user and state. */
export async function containerLines(lab: string): Promise<string[]> {
  const rows = await containersOf(lab, '{{.Names}}\t{{.ID}}\t{{.Status}}')
  const lines = ['containers (image ' + labImage + ')']
  for (const row of rows.sort()) {
    const [name, id, status] = row.split('\t')
    const user = await docker(['inspect', '--format', '{{.Config.User}}', id!], { allowFailure: true })
    lines.push(`  ${name!.padEnd(32)} ${id}  user ${user.stdout.trim() || 'root'}  ${status}`)
  }
  if (rows.length === 0) lines.push('  none')
  return lines
}
