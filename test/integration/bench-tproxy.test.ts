// The bench's TPROXY peers really take the TPROXY path: with each peer as the sidecars, the bench server's
// connection in reviews comes from productpage's own address and carries the mark 1337 (REDIRECT: from
// 127.0.0.6), and switching peers switches the pods' rules between the modes and back.
import t from 'tap'
import { execIn, listNetns } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'

// The bench is plain JavaScript checked by its own tsconfig; these are the few members the test uses.
interface Peer {
  name: string
  mode?: 'REDIRECT' | 'TPROXY'
}
interface BenchLabLike {
  lab: string
  up(): Promise<void>
  down(): Promise<unknown>
  setPosition(p: string): Promise<void>
  startSidecars(p: Peer): Promise<void>
  ns(pod: string): string
}
const harness = new URL('../../bench/harness.mjs', import.meta.url).href
const peersModule = new URL('../../bench/peers.mjs', import.meta.url).href
const { BenchLab } = (await import(harness)) as { BenchLab: new (lab: string) => BenchLabLike }
const { haproxy, haproxyTproxy, sidecarLab, sidecarLabTproxy } = (await import(peersModule)) as Record<string, Peer>

t.test(
  'bench peers: sidecar-lab and HAProxy in TPROXY and REDIRECT mode, each through both sidecars',
  { ...rootOnly(), timeout: 240_000 },
  async (t) => {
    const lab = new BenchLab(`sltb${process.pid % 10000}`)
    t.teardown(() => lab.down())
    await lab.up()
    await lab.setPosition('both')
    for (const peer of [sidecarLabTproxy!, haproxyTproxy!, haproxy!, sidecarLab!]) {
      await lab.startSidecars(peer)
      const tproxy = peer.mode === 'TPROXY'
      await execIn(lab.ns('reviews'), ['conntrack', '-D', '-p', 'tcp', '--dport', '9090'], { allowFailure: true })
      const curl = await execIn(
        lab.ns('productpage'),
        [
          'setpriv',
          '--reuid=1000',
          '--regid=1000',
          '--clear-groups',
          'curl',
          '-s',
          '-m',
          '5',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          'http://198.18.0.20:9090/',
        ],
        { allowFailure: true },
      )
      t.equal(curl.stdout, '200', `${peer.name}: the bench server answers`)
      const ct = (await execIn(lab.ns('reviews'), ['conntrack', '-L', '-p', 'tcp', '--dport', '9090'], { allowFailure: true })).stdout
      if (tproxy) {
        t.match(
          ct,
          /src=198\.18\.0\.10 dst=198\.18\.0\.20 sport=\d+ dport=9090 src=198\.18\.0\.20 dst=198\.18\.0\.10 sport=9090 .*mark=1337/,
          `${peer.name}: the sidecar's connection to the server leaves from productpage's address, marked 1337`,
        )
        t.notMatch(ct, /127\.0\.0\.6/)
      } else {
        t.match(ct, /src=127\.0\.0\.6 dst=198\.18\.0\.20 sport=\d+ dport=9090/, `${peer.name}: REDIRECT: from 127.0.0.6`)
      }
      const routes = (await execIn(lab.ns('reviews'), ['ip', 'rule', 'show'])).stdout
      t.equal(/lookup 133/.test(routes), tproxy, `${peer.name}: TPROXY's policy rule is there only in TPROXY mode`)
    }
    await lab.down()
    t.same(await listNetns(`${lab.lab}-`), [])
  },
)
