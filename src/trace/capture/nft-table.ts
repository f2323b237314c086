// The temporary nftables table that switches tracing on in a pod: `meta nftrace set 1` for the SYNs and
// SYN-ACKs of the traced port and the sidecar's ports, at a priority before conntrack and nat so the
// trace shows every chain after it. It is removed afterwards, also when the trace fails.
import { execIn } from '../../sys/netns.js'
import type { OwnTable } from './parse.js'

export const traceTable = 'sidecar_lab_trace'

/** Which of our chains sits where: the first ones mark packets, the -after ones print them rewritten. */
export const ownTable: OwnTable = {
  name: traceTable,
  first: { pre: 'prerouting', out: 'output' },
  last: { pre_after: 'prerouting', out_after: 'output' },
}

/** The sidecar's outbound and inbound capture ports, where REDIRECT sends the traced connections. */
export const sidecarPorts = [15001, 15006]

/** The table as `nft -f` input. -350 runs before raw (-300) and conntrack (-200); 350 after nat. */
export function traceRuleset(ports: number[]): string {
  const set = `{ ${[...new Set(ports)].sort((a, b) => a - b).join(', ')} }`
  // SYN with or without ACK, not RST: a connection's opening packet and its answer.
  const marks = (dir: 'dport' | 'sport') => `tcp flags & (syn | rst) == syn tcp ${dir} ${set} meta nftrace set 1`
  const chain = (name: string, hook: string, priority: number, rules: string[]) => [
    `  chain ${name} {`,
    `    type filter hook ${hook} priority ${priority}; policy accept;`,
    ...rules.map((r) => `    ${r}`),
    '  }',
  ]
  return [
    `table inet ${traceTable} {`,
    ...chain('pre', 'prerouting', -350, [marks('dport'), marks('sport')]),
    ...chain('out', 'output', -350, [marks('dport'), marks('sport')]),
    ...chain('pre_after', 'prerouting', 350, []),
    ...chain('out_after', 'output', 350, []),
    '}',
    '',
  ].join('\n')
}

export async function tableExists(ns: string): Promise<boolean> {
  const r = await execIn(ns, ['nft', 'list', 'table', 'inet', traceTable], { allowFailure: true })
  return r.code === 0
}

export async function installTraceTable(ns: string, ports: number[]): Promise<void> {
  await removeTraceTable(ns) // a leftover from a run that was killed before its cleanup
  await execIn(ns, ['nft', '-f', '-'], { input: traceRuleset(ports), describe: `nft -f - (trace table, in ${ns})` })
}

/** Idempotent: no table is not an error, so this can run in every cleanup path. */
export async function removeTraceTable(ns: string): Promise<void> {
  if (await tableExists(ns)) await execIn(ns, ['nft', 'delete', 'table', 'inet', traceTable])
}
