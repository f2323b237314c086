// The temporary nft table that switches tracing on for DNS in a pod: UDP to or from port 53 and 15053,
// at a priority before raw (-300), so the trace shows the raw table's CT zone rules as well as nat's.
// Same table name and chain names as the TCP trace's (src/trace/capture/nft-table.ts), so its parser and its
// cleanup serve both.
import { execIn } from '../../sys/netns.js'
import { removeTraceTable, traceTable } from '../capture/nft-table.js'

export function dnsTraceRuleset(): string {
  const set = '{ 53, 15053 }'
  const chain = (name: string, hook: string, priority: number, rules: string[]) => [
    `  chain ${name} {`,
    `    type filter hook ${hook} priority ${priority}; policy accept;`,
    ...rules.map((r) => `    ${r}`),
    '  }',
  ]
  const marks = [`udp dport ${set} meta nftrace set 1`, `udp sport ${set} meta nftrace set 1`]
  return [
    `table inet ${traceTable} {`,
    ...chain('pre', 'prerouting', -350, marks),
    ...chain('out', 'output', -350, marks),
    ...chain('pre_after', 'prerouting', 350, []),
    ...chain('out_after', 'output', 350, []),
    '}',
    '',
  ].join('\n')
}

export async function installDnsTraceTable(ns: string): Promise<void> {
  await removeTraceTable(ns)
  await execIn(ns, ['nft', '-f', '-'], { input: dnsTraceRuleset(), describe: `nft -f - (DNS trace table, in ${ns})` })
}
