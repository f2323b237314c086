// The marks on each step of an ambient trace. nft's trace prints a packet's mark (skb->mark) on policy
// lines when it is not 0, not on rule lines; the connection's ct mark it does not print at all, so it is
// followed here through the rules that set it (conntrack -L's mark= confirms it afterwards). And the step
// nft cannot print: a rule that did NOT match, the in-pod REDIRECT the ztunnel's own marked SYN passes.
import type { Traversal } from '../capture/parse.js'
import type { Step } from '../capture/steps.js'

/** Istio's in-pod mark: every socket the ztunnel makes in a pod carries it (src/ambient/pod-proxy.ts). */
export const INPOD_MARK = 0x539

export interface Marked {
  /** the packet's mark at this step, as the trace showed it (null on a ztunnel step: no packet) */
  mark: number | null
  /** its connection's ct mark in this pod, followed through the rules that set it */
  ctmark: number | null
}

export const hex = (n: number) => `0x${n.toString(16)}`

/** nft's `meta mark 0x00000539` suffix off a verdict or policy text: the step shows the mark on its own. */
const noMark = (text: string) => text.replace(/\s*meta mark 0x[0-9a-f]+/gi, '').trim()

/** iptables-nft's set-xmark as nft prints it: `ct mark set ct mark xor V and M` (keep M's bits, then xor V). */
function ctmarkAfter(rule: string, ct: number): number {
  const m = /ct mark set ct mark xor (0x[0-9a-f]+) and (0x[0-9a-f]+)/i.exec(rule)
  if (!m) return ct
  return ((ct & parseInt(m[2]!, 16)) ^ parseInt(m[1]!, 16)) >>> 0
}

/** The REDIRECT rule of ISTIO_OUTPUT that the ztunnel's mark exempts, in iptables form, from the pod's listing. */
function redirectRule(iptables: Map<string, string>, pod: string, family: string): string | null {
  for (const [key, rule] of iptables)
    if (key.startsWith(`${pod} ${family} nat `) && /^-A ISTIO_OUTPUT .*! --mark 0x539\/0xfff -j REDIRECT/.test(rule)) return rule
  return null
}

type Out = Omit<Step, 'n' | 'kind' | 'accept' | 'walk'> & Marked & { kind: 'netfilter'; ztunnel: null }

/**
 * A traversal's steps with their marks, and, where a marked SYN entered nat's ISTIO_OUTPUT and no rule of it
 * matched (the trace goes from the jump straight to OUTPUT's policy, the packet unchanged), the REDIRECT rule
 * shown as a step of its own, not taken: the no-loop proof.
 */
export function withMarks(
  t: Traversal,
  steps: Omit<Step, 'n'>[],
  ctmarks: Map<string, number>,
  conn: number,
  iptables: Map<string, string>,
): Out[] {
  const key = `${conn} ${t.pod}`
  let mark = t.markBefore ?? 0
  const out: Out[] = []
  const hits = steps.length === t.hits.length ? t.hits : []
  steps.forEach((s, k) => {
    const hit = hits[k]
    let ct = ctmarks.get(key) ?? 0
    if (hit?.policy) mark = hit.mark ?? 0
    else if (s.rule && /meta mark set ct mark/.test(s.rule)) mark = ct
    if (s.rule) ct = ctmarkAfter(s.rule, ct)
    ctmarks.set(key, ct)
    const { kind: _kind, accept: _accept, walk: _walk, ...rest } = s
    const rerouted =
      s.rule && /meta mark set ct mark/.test(s.rule) && (mark & 0xfff) === 0x111
        ? `the reply now carries mark 0x111: it was routed to ${t.before.oif ?? '?'} (the trace's oif), and mangle OUTPUT routes ` +
          'a packet again when its mark changed: fwmark 0x111 -> table 100 -> local, through lo'
        : null
    out.push({
      ...rest,
      kind: 'netfilter',
      ztunnel: null,
      rule: s.rule && noMark(s.rule),
      verdict: noMark(s.verdict),
      note: rerouted ?? rest.note,
      mark,
      ctmark: ct,
    })
    if (hit && (t.markBefore ?? 0) && ((t.markBefore ?? 0) & 0xfff) === INPOD_MARK && !isReplyStep(s)) {
      const enteredNat = hit.table === 'nat' && hit.chain === 'OUTPUT' && hit.verdict === 'jump ISTIO_OUTPUT'
      const matched = t.hits.some((h) => h.table === 'nat' && h.chain === 'ISTIO_OUTPUT' && h.family === hit.family)
      if (enteredNat && !matched) {
        const rule = redirectRule(iptables, t.pod, hit.family)
        out.push({
          ...rest,
          kind: 'netfilter',
          ztunnel: null,
          rewritten: null,
          table: `${hit.family} nat`,
          chain: 'ISTIO_OUTPUT',
          rule: rule ?? 'REDIRECT --to-ports 15001 unless the mark is 0x539/0xfff',
          iptables: rule,
          verdict: 'not taken',
          note:
            `the packet's mark ${hex(mark)} fails the rule's '! --mark 0x539/0xfff': no rule of ISTIO_OUTPUT matched ` +
            "(the trace returns from the jump to OUTPUT's policy) and the SYN leaves unredirected",
          mark,
          ctmark: ct,
        })
      }
    }
  })
  return out
}

const isReplyStep = (s: Omit<Step, 'n'>) => s.packet.flags.includes('ack')
