// An ambient trace's questions, answered from its own steps: does the ztunnel's own traffic loop back into
// the in-pod REDIRECT, how does the app's reply to a transparent (caller-addressed) connection find its way
// back to the ztunnel instead of out to the caller, and does the request cross the wire in clear (HBONE)?
import { formatEndpoint as fmt } from '../../net/address.js'
import type { AmbientConnection, AmbientStep } from './report.js'
import { REPLY_MARK, REPLY_TABLE } from './evidence.js'
import { hex, INPOD_MARK } from './marks.js'

export interface AmbientAnswer {
  question: string
  /** loop: false when every ztunnel SYN left its pod unredirected; reply: true when the marked reply came back on lo */
  yes: boolean | null
  answer: string
  /** the steps the answer rests on */
  steps: number[]
}

export interface AmbientAnswers {
  loop: AmbientAnswer
  reply: AmbientAnswer
  wire: AmbientAnswer
}

const stepList = (steps: AmbientStep[]) => `step${steps.length === 1 ? '' : 's'} ${steps.map((s) => s.n).join(', ')}`

const synOut = (steps: AmbientStep[], c: AmbientConnection) =>
  steps.filter(
    (s) => s.kind === 'netfilter' && s.connection === c.index && s.pod === c.pod && s.hook === 'output' && !s.packet.flags.includes('ack'),
  )

function loopAnswer(steps: AmbientStep[], connections: AmbientConnection[]): AmbientAnswer {
  // a pooled HBONE session was opened before this trace: its SYN is not in it
  const own = connections.filter((c) => c.owner.process === 'ztunnel' && !c.pooled)
  const redirected = own.filter((c) => synOut(steps, c).some((s) => s.rewritten && [15001, 15006].includes(s.rewritten.dst.port)))
  const notTaken = own.flatMap((c) => synOut(steps, c).filter((s) => s.verdict === 'not taken'))
  const loAccept = own.flatMap((c) => synOut(steps, c).filter((s) => s.chain === 'ISTIO_OUTPUT' && /oifname "lo"/.test(s.rule ?? '')))
  const markedSyns = own.flatMap((c) => synOut(steps, c).slice(0, 1)).filter((s) => ((s.mark ?? 0) & 0xfff) === INPOD_MARK)
  const seen = own.length > 0 && own.every((c) => synOut(steps, c).length > 0)
  const yes = redirected.length ? true : seen ? false : null
  const answer =
    yes === false
      ? `No loop. Each of the ztunnel's SYNs leaves its pod marked ${hex(INPOD_MARK)} (${stepList(markedSyns)}). ` +
        (notTaken.length
          ? `In nat ISTIO_OUTPUT the REDIRECT to 15001 is not taken for them (${stepList(notTaken)}: the chain ` +
            'entered, no rule matched, the packet unchanged). '
          : '') +
        (loAccept.length
          ? `Its connection to the app goes out on lo and is accepted before the REDIRECT is reached (${stepList(loAccept)}).`
          : '')
      : yes
        ? `A ztunnel connection was redirected in its own pod (${redirected.map((c) => fmt(c.client)).join(', ')}): that is a loop.`
        : "The trace did not see the ztunnel's own connections, so it cannot tell."
  return {
    question: "Does the ztunnel's own traffic, made inside the pod, go back into the in-pod REDIRECT and loop?",
    yes: yes === null ? null : yes,
    answer: answer.trim(),
    steps: [...markedSyns, ...notTaken, ...loAccept].map((s) => s.n).sort((a, b) => a - b),
  }
}

function replyAnswer(steps: AmbientStep[], connections: AmbientConnection[], routing: Record<string, string[]>): AmbientAnswer {
  const toApp = connections.find((c) => c.role === 'ztunnel inbound')
  const question = `How does the app's reply to the ztunnel's transparent connection come back to the ztunnel (fwmark ${hex(REPLY_MARK)}, table ${REPLY_TABLE})?`
  if (!toApp) return { question, yes: null, answer: 'The trace saw no connection from the ztunnel to the app.', steps: [] }
  const mine = steps.filter((s) => s.kind === 'netfilter' && s.connection === toApp.index && s.pod === toApp.pod)
  const setCt = mine.find((s) => /ct mark set/.test(s.rule ?? ''))
  const restore = mine.find((s) => s.packet.flags.includes('ack') && /meta mark set ct mark/.test(s.rule ?? ''))
  const back = mine.find((s) => s.packet.flags.includes('ack') && s.hook === 'prerouting' && ((s.mark ?? 0) & 0xfff) === REPLY_MARK)
  const route = (routing[toApp.pod] ?? []).find((l) => l.includes(`mark ${hex(REPLY_MARK)}:`))
  const yes = Boolean(restore && back)
  const answer = yes
    ? `The ztunnel's SYN to the app arrives marked ${hex(INPOD_MARK)}, so ISTIO_PRERT sets its connection's ct mark to ${hex(REPLY_MARK)}` +
      `${setCt ? ` (step ${setCt.n})` : ''}. The app's SYN-ACK to ${toApp.client.address} gets mark ${hex(REPLY_MARK)} back from that ct mark in ` +
      `mangle ISTIO_OUTPUT (step ${restore!.n}); the policy rule 'fwmark ${hex(REPLY_MARK)}/0xfff lookup ${REPLY_TABLE}' sends it by table ` +
      `${REPLY_TABLE}, whose local default route is dev lo, so it comes back in through lo (step ${back!.n}) to the ztunnel's transparent ` +
      `socket instead of out eth0 to the caller.${route ? ` The kernel's own routing decision: ${route}.` : ''}`
    : `The trace did not show the app's reply marked ${hex(REPLY_MARK)} and back on lo; see the steps and the routing below.`
  return { question, yes, answer, steps: [setCt, restore, back].flatMap((s) => (s ? [s.n] : [])) }
}

/** Between the pods: the app's bytes inside mutual TLS to the callee's 15008 (HBONE), or plain TCP. */
function wireAnswer(steps: AmbientStep[], connections: AmbientConnection[]): AmbientAnswer {
  const question = "Does the request cross the wire between the pods in clear, or only as TLS to the callee's 15008 (HBONE)?"
  const app = connections[0]
  const hop = connections.find((c) => c.role === 'ztunnel outbound' && c.pod === app?.pod)
  if (!app || !hop) return { question, yes: null, answer: "The trace saw no connection from the caller's ztunnel.", steps: [] }
  const callee = connections.find((c) => c.role === 'ztunnel inbound')?.pod
  const arrival = steps.filter(
    (s) =>
      s.kind === 'netfilter' && s.connection === hop.index && s.pod === callee && s.hook === 'prerouting' && /\bnat$/.test(s.table ?? ''),
  )
  if (hop.server.port !== 15008) {
    return {
      question,
      yes: true,
      answer:
        `In clear: the caller's ztunnel opened plain TCP to ${fmt(hop.server)} (connection ${hop.index}); the destination is ` +
        "not an HBONE workload in the ztunnel's table, so it takes part 1's plain path.",
      steps: [],
    }
  }
  return {
    question,
    yes: false,
    answer:
      `Only as TLS. Between the pods the one connection is ${fmt(hop.client)} -> ${fmt(hop.server)} (connection ${hop.index}), ` +
      `the caller's ztunnel to the callee's 15008: mutual TLS carrying an HTTP/2 CONNECT to ${fmt(app.server)}, the app's bytes ` +
      'inside it.' +
      (arrival.length
        ? ` In ${callee}, nat PREROUTING let its SYN through to 15008 unredirected (${stepList(arrival)}): the in-pod ` +
          "REDIRECT to 15006 excludes --dport 15008, and the ztunnel's own listener is there."
        : '') +
      (hop.pooled ? ' The session was pooled from an earlier request, so its TLS handshake is not in this trace.' : ''),
    steps: arrival.map((s) => s.n),
  }
}

export function ambientAnswers(steps: AmbientStep[], connections: AmbientConnection[], routing: Record<string, string[]>): AmbientAnswers {
  return { loop: loopAnswer(steps, connections), reply: replyAnswer(steps, connections, routing), wire: wireAnswer(steps, connections) }
}
