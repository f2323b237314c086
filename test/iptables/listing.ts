// What `iptables -S -t TABLE` would print after restoring a plan into empty tables: policies, user chains
// in name order, then each chain's rules in kernel order, every rule in iptables' canonical form (the
// basic matches -s -d -i -o -p first, the implicit `-m tcp` / `-m udp` made explicit).

const policyChains: Record<string, string[]> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
}

export function listing(restore: string, table: string): string[] {
  const builtins = policyChains[table] ?? []
  const user = new Set<string>()
  const rules = new Map<string, string[]>()
  const chainRules = (chain: string) => {
    let list = rules.get(chain)
    if (!list) rules.set(chain, (list = []))
    return list
  }
  let current = ''
  for (const line of restore.split('\n')) {
    if (line.startsWith('* ')) current = line.slice(2)
    if (current !== table) continue
    const [op = '', chain = '', ...rest] = line.split(' ')
    if (op === '-N') user.add(chain)
    if (op === '-A') chainRules(chain).push(canonical(rest))
    if (op === '-I') chainRules(chain).splice(Number(rest[0]) - 1, 0, canonical(rest.slice(1)))
  }
  const order = [...builtins, ...[...user].sort()]
  return [
    ...builtins.map((c) => `-P ${c} ACCEPT`),
    ...[...user].sort().map((c) => `-N ${c}`),
    ...order.flatMap((c) => (rules.get(c) ?? []).map((r) => `-A ${c} ${r}`)),
  ]
}

/** A rule's options in the order iptables -S prints them. */
export function canonical(tokens: string[]): string {
  const basic: Record<string, string> = {}
  const matches: Array<{ name: string; opts: string[] }> = []
  let target: string[] = []
  let negate = false
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] ?? ''
    if (tok === '!') {
      negate = true
      continue
    }
    const not = negate ? '! ' : ''
    negate = false
    if (['-s', '-d', '-i', '-o', '-p'].includes(tok)) {
      let value = tokens[++i] ?? ''
      if ((tok === '-s' || tok === '-d') && !value.includes('/')) value += value.includes(':') ? '/128' : '/32'
      basic[tok] = `${not}${tok} ${value}`
    } else if (tok === '-m') {
      matches.push({ name: tokens[++i] ?? '', opts: [] })
    } else if (tok === '-j') {
      target = tokens.slice(i)
      break
    } else {
      const last = matches.at(-1)
      const proto = basic['-p']?.split(' ').at(-1) ?? ''
      if ((tok === '--dport' || tok === '--sport') && last?.name !== proto) matches.push({ name: proto, opts: [] })
      matches.at(-1)?.opts.push(`${not}${tok} ${tokens[++i] ?? ''}`)
    }
  }
  return [
    ...['-s', '-d', '-i', '-o', '-p'].flatMap((k) => (basic[k] ? [basic[k]] : [])),
    ...matches.map((m) => [`-m ${m.name}`, ...m.opts].join(' ')),
    ...target,
  ].join(' ')
}
