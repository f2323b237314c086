// The ledger both relay engines keep: the one naming of a connection's end (termination details, failure
// reason, response flags, as the access log prints them), the upstream-source policy, and the record a
// ledger closes with. No sockets: the engines' own tests drive real connections through it.
import t from 'tap'
import { formatText } from '../../../src/proxy/access-log.js'
import { defaultProxyConfig } from '../../../src/proxy/config.js'
import { accessLogEntry, ConnectionChannel } from '../../../src/proxy/engines/record.js'
import {
  ConnectionLedger,
  connectFailure,
  nameOutcome,
  upstreamSource,
  type PassthroughRoute,
  type RelayClose,
} from '../../../src/proxy/engines/ledger.js'
import { relayClose } from '../../../src/proxy/engines/native.js'
import { Recorder, silent } from '../../helpers/loopback-proxy.js'

const ended = (close: RelayClose | undefined) => nameOutcome({ failure: undefined, looped: false, close })

t.test('every close kind has its Envoy termination details', async (t) => {
  t.equal(ended(undefined).terminationDetails, '', 'nothing reported: ended normally')
  t.equal(ended({ kind: 'clean' }).terminationDetails, '')
  t.equal(ended({ kind: 'idle' }).terminationDetails, 'idle_timeout')
  t.equal(ended({ kind: 'loop' }).terminationDetails, 'upstream_loop')
  t.equal(ended({ kind: 'drain' }).terminationDetails, 'drain_timeout')
  t.equal(ended({ kind: 'error', side: 'upstream', code: 'ECONNRESET' }).terminationDetails, 'upstream_econnreset')
  t.equal(ended({ kind: 'error', side: 'downstream', code: 'EPIPE' }).terminationDetails, 'downstream_epipe')
  t.equal(ended({ kind: 'error', side: 'upstream', code: undefined }).terminationDetails, 'upstream_error', 'an error without a code')
  t.same(ended({ kind: 'drain' }).flags, [], 'a close alone sets no flag')
})

t.test("the native engine's typed close names as the node engine's socket error does", async (t) => {
  const bytes = { id: 1, downstreamRx: 0, downstreamTx: 0, upstreamRx: 0, upstreamTx: 0 } as const
  t.same(relayClose({ type: 'closed', ...bytes, close: 'error', side: 'upstream', errno: 104 }), {
    kind: 'error',
    side: 'upstream',
    code: 'ECONNRESET',
  })
  t.equal(
    ended(relayClose({ type: 'closed', ...bytes, close: 'error', side: 'downstream', errno: 32 })).terminationDetails,
    'downstream_epipe',
  )
  t.equal(ended(relayClose({ type: 'closed', ...bytes, close: 'idle' })).terminationDetails, 'idle_timeout')
  t.equal(ended(relayClose({ type: 'closed', ...bytes, close: 'loop' })).terminationDetails, 'upstream_loop')
})

t.test('a failed connect: the reason and UF,URX; a loop: UF alone', async (t) => {
  const refused = nameOutcome({ failure: { timeout: false, errno: 111, code: 'ECONNREFUSED' }, looped: false, close: undefined })
  t.same(refused, { flags: ['UF', 'URX'], terminationDetails: '', failureReason: 'delayed_connect_error:_111' })
  const timeout = nameOutcome({ failure: { timeout: true }, looped: false, close: { kind: 'clean' } })
  t.same(timeout, { flags: ['UF', 'URX'], terminationDetails: '', failureReason: 'connect_timeout' })
  const err = Object.assign(new Error('connect ECONNREFUSED'), { errno: -111, code: 'ECONNREFUSED' })
  t.same(connectFailure(err), { timeout: false, errno: 111, code: 'ECONNREFUSED' }, "node:net's negative errno")
  const noErrno = nameOutcome({
    failure: connectFailure(Object.assign(new Error('x'), { code: 'EPERM' })),
    looped: false,
    close: undefined,
  })
  t.equal(noErrno.failureReason, 'delayed_connect_error:_EPERM', 'no errno: the code')
  t.same(nameOutcome({ failure: undefined, looped: true, close: { kind: 'loop' } }), {
    flags: ['UF'],
    terminationDetails: 'upstream_loop',
    failureReason: '',
  })
})

t.test('the upstream leaves from 127.0.0.6 / ::6 inbound, the client in TPROXY mode, anywhere outbound', async (t) => {
  const config = defaultProxyConfig
  const v4 = { address: '198.18.0.2', port: 80, family: 4 as const }
  const v6 = { address: '2001:2::2', port: 80, family: 6 as const }
  const client = { address: '198.18.0.9', port: 40000, family: 4 as const }
  t.same(upstreamSource({ kind: 'outbound', config }, v4, client), {})
  t.same(upstreamSource({ kind: 'inbound', config }, v4, client), { address: '127.0.0.6' })
  t.same(upstreamSource({ kind: 'inbound', config }, v6, client), { address: '::6' })
  const tproxy = { ...config, interceptionMode: 'TPROXY' as const }
  t.same(upstreamSource({ kind: 'inbound', config: tproxy }, v4, client), { address: '198.18.0.9', transparent: true, mark: 1337 })
  t.same(upstreamSource({ kind: 'outbound', config: tproxy }, v4, client), {}, 'TPROXY intercepts inbound only')
})

t.test('a ledger publishes its events and closes once with the named record', async (t) => {
  const events = new ConnectionChannel()
  const recorder = new Recorder()
  events.subscribe(recorder)
  const dst = { address: '198.18.0.2', port: 9999, family: 4 as const }
  const route: PassthroughRoute = {
    kind: 'passthrough',
    cluster: 'PassthroughCluster',
    filterChain: 'PassthroughFilterChain',
    destination: dst,
    serviceName: 'unknown',
  }
  const ledger = new ConnectionLedger({ events, log: silent }, route, { address: '198.18.0.1', port: 5555, family: 4 })
  ledger.failed({ timeout: false, errno: 111, code: 'ECONNREFUSED' })
  ledger.ended({ kind: 'clean' })
  t.ok(ledger.close({ rx: 0, tx: 0 }, { rx: 0, tx: 0 }))
  t.notOk(ledger.close({ rx: 1, tx: 1 }, { rx: 1, tx: 1 }), 'the second close publishes nothing')
  t.same(recorder.names(), ['opened', 'failed', 'closed'])
  const record = recorder.records[0]!
  t.match(
    formatText(accessLogEntry(record)),
    /"- - -" 0 UF,URX - - "delayed_connect_error:_111" 0 0 \d+ - "-" "-" "-" "-" "198\.18\.0\.2:9999" PassthroughCluster - 198\.18\.0\.2:9999 198\.18\.0\.1:5555 - -/,
  )
})

t.test('an idle timeout or a loop names the close whatever was reported first; otherwise the first wins', async (t) => {
  const events = new ConnectionChannel()
  const recorder = new Recorder()
  events.subscribe(recorder)
  const route: PassthroughRoute = {
    kind: 'passthrough',
    cluster: 'PassthroughCluster',
    filterChain: 'PassthroughFilterChain',
    destination: { address: '198.18.0.2', port: 80, family: 4 },
    serviceName: 'unknown',
  }
  const closeWith = (...closes: RelayClose[]) => {
    const ledger = new ConnectionLedger({ events, log: silent }, route, undefined)
    for (const c of closes) ledger.ended(c)
    ledger.close({ rx: 0, tx: 0 }, { rx: 0, tx: 0 })
    return recorder.records.at(-1)!.terminationDetails
  }
  t.equal(
    closeWith({ kind: 'error', side: 'upstream', code: 'ECONNRESET' }, { kind: 'error', side: 'downstream', code: 'EPIPE' }),
    'upstream_econnreset',
  )
  t.equal(closeWith({ kind: 'drain' }, { kind: 'error', side: 'downstream', code: 'ECONNRESET' }), 'drain_timeout')
  t.equal(closeWith({ kind: 'drain' }, { kind: 'loop' }), 'upstream_loop')
  t.equal(closeWith({ kind: 'error', side: 'upstream', code: 'ECONNRESET' }, { kind: 'idle' }), 'idle_timeout')
})
