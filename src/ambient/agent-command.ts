// `sidecar-lab cni-agent`: the ZDS side of istio-cni's node agent. It serves the pods listed in a file to every
// ztunnel that connects (the netns of each as a descriptor), reads the file again on SIGHUP and sends what
// changed (add, del). Programming the pods' rules, istio-cni's other half, is `sidecar-lab inpod-rules`.
import { readFileSync } from 'node:fs'
import type { Command } from '../command.js'
import { InvalidFlagError } from '../errors.js'
import { parseCommandArgs } from '../flags/args.js'
import { oneOf } from '../flags/values.js'
import { createLogger, type Logger } from '../logger.js'
import { resolveLogFormat } from '../log-format.js'
import { quoteInput } from '../quote.js'
import { ZdsServer, type ZdsPod } from './zds.js'

const COMMAND = 'sidecar-lab cni-agent'

const help = `usage: ${COMMAND} --zds PATH --pods FILE [--log-level LEVEL] [--log-format json|text]

istio-cni's node agent, the part that talks to ztunnel: listens on PATH (a SOCK_SEQPACKET Unix socket, as
istio-cni's ZDS server) and gives every ztunnel that connects the pods in FILE, each with its network
namespace as a file descriptor (SCM_RIGHTS), then "snapshot sent". On SIGHUP it reads FILE again and
sends the pods added (add) and removed (del). FILE is JSON: a list of pods,
  [{ "name": "productpage", "netns": "/run/netns/lab-productpage",
     "namespace": "default", "serviceAccount": "productpage", "uid": "productpage" }]
where only name and netns are needed (namespace defaults to default, serviceAccount and uid to the name).
The rules that send each pod's traffic to ztunnel are 'sidecar-lab inpod-rules'.
`

const options = {
  zds: { type: 'string', value: 'PATH' },
  pods: { type: 'string', value: 'FILE' },
  'log-level': { type: 'string', value: 'LEVEL' },
  'log-format': { type: 'string', value: 'json|text' },
  help: { type: 'boolean' },
} as const

/** The pods file: every entry checked, errors naming the file, the entry and the field. */
export function readPods(file: string): ZdsPod[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new InvalidFlagError(`--pods ${quoteInput(file, 200)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!Array.isArray(parsed)) throw new InvalidFlagError(`--pods ${quoteInput(file, 200)}: expected a JSON list of pods`)
  const pods: ZdsPod[] = []
  parsed.forEach((entry: unknown, i) => {
    const e = (entry ?? {}) as Record<string, unknown>
    const field = (name: string, fallback?: string): string => {
      const v = e[name] ?? fallback
      if (typeof v !== 'string' || v === '') {
        throw new InvalidFlagError(`--pods ${quoteInput(file, 200)}: pod ${i + 1} needs "${name}" as a non-empty string`)
      }
      return v
    }
    const name = field('name')
    const netnsPath = field('netns')
    if (!netnsPath.startsWith('/'))
      throw new InvalidFlagError(`--pods: pod ${name}: "netns" must be an absolute path, not ${quoteInput(netnsPath, 80)}`)
    const pod = {
      uid: field('uid', name),
      name,
      namespace: field('namespace', 'default'),
      serviceAccount: field('serviceAccount', name),
      netnsPath,
    }
    if (pods.some((p) => p.uid === pod.uid)) throw new InvalidFlagError(`--pods: uid ${quoteInput(pod.uid, 80)} is listed twice`)
    pods.push(pod)
  })
  return pods
}

export const agentCommand: Command = {
  name: 'cni-agent',
  async run(argv, io) {
    const { values: v } = parseCommandArgs(argv, options, COMMAND)
    if (v.help) {
      io.stdout.write(help)
      return 0
    }
    if (!v.zds || !v.pods) throw new InvalidFlagError(`${COMMAND} needs --zds PATH and --pods FILE (see --help)`)
    const level = oneOf('log-level', v['log-level'] ?? 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const)
    const log = createLogger({ level, format: resolveLogFormat(v['log-format'], io.env, io.stderr) })
    const podsFile = v.pods
    let pods = readPods(podsFile)
    const server = new ZdsServer({ path: v.zds, logger: log.child({ component: 'zds' }) })
    server.on('nack', (n: { uid?: string; error: string }) => log.error({ uid: n.uid, error: n.error }, 'ztunnel refused a pod'))
    server.on('snapshot', (id: number) => log.info({ connection: id, pods: server.podList().length }, 'snapshot sent to ztunnel'))
    for (const pod of pods) await server.addPod(pod)
    server.listen()
    log.info({ zds: v.zds, pods: pods.map((p) => p.name) }, 'cni agent ready')
    const onHup = () => void reload(server, podsFile, pods, log).then((next) => (pods = next))
    process.on('SIGHUP', onHup)
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve()
      io.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    process.off('SIGHUP', onHup)
    await server.close()
    log.info('cni agent stopped')
    return 0
  },
}

/** SIGHUP: the file again; pods gone are deleted, new ones added. A bad file keeps the pods as they were. */
async function reload(server: ZdsServer, file: string, before: ZdsPod[], log: Logger): Promise<ZdsPod[]> {
  let next: ZdsPod[]
  try {
    next = readPods(file)
  } catch (err) {
    log.error({ err }, 'pods file not reloaded: keeping the pods as they were')
    return before
  }
  const uids = new Set(next.map((p) => p.uid))
  for (const gone of before.filter((p) => !uids.has(p.uid))) {
    log.info({ uid: gone.uid }, 'pod removed: deleting it from ztunnel')
    await server.removePod(gone.uid).catch((err: Error) => log.error({ err, uid: gone.uid }, 'del not acknowledged'))
  }
  const had = new Set(before.map((p) => p.uid))
  for (const added of next.filter((p) => !had.has(p.uid))) {
    log.info({ uid: added.uid }, 'pod added: sending it to ztunnel')
    await server.addPod(added).catch((err: Error) => log.error({ err, uid: added.uid }, 'add not acknowledged'))
  }
  return next
}
