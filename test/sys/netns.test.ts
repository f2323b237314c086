// The sweep after `lab down` removes half-made veth links of dead processes only, never those another live
// lab or test is moving into its namespaces at that moment.
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { removeStrayVeths } from '../../src/sys/netns.js'
import { rootOnly } from '../helpers/root.js'

const links = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })

t.test('removeStrayVeths removes the links of a dead creator and keeps those of a live one', rootOnly(), async (t) => {
  // pid 1 is always alive; 9999999 is above any pid_max Linux allows (4194304), so never alive.
  const live = 'slv1a' + (process.pid % 10000)
  const dead = 'slv9999999a' + (process.pid % 10000)
  const deadPeer = 'slv9999999b' + (process.pid % 10000)
  t.teardown(() => {
    for (const name of [live, dead]) {
      try {
        execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' })
      } catch {
        // already removed (deleting one end of a veth removes both)
      }
    }
  })
  execFileSync('ip', ['link', 'add', live, 'type', 'veth', 'peer', 'name', 'slv1b' + (process.pid % 10000)])
  execFileSync('ip', ['link', 'add', dead, 'type', 'veth', 'peer', 'name', deadPeer])
  const removed = await removeStrayVeths()
  t.ok(removed.includes(dead), "the dead creator's link is removed")
  t.notOk(
    removed.some((n) => n.startsWith('slv1a') || n.startsWith('slv1b')),
    "the live creator's links are kept",
  )
  t.match(links(), new RegExp(`${live}[@:]`), 'the live link is still there')
  t.notMatch(links(), new RegExp(`${dead}[@:]`), 'the dead link is gone')
})
