// The trace's monitors on a busy machine: a monitor that subscribes only after the trace table was added
// missed its event. armMonitors adds the table again until the monitor saw it (seen: 'trace --compare'
// failing with "nft monitor ... did not report the trace table within 5000 ms" while CI ran).
import t from 'tap'
import { addNetns, deleteNetns } from '../../../src/sys/netns.js'
import { armMonitors, TraceMonitor } from '../../../src/trace/capture/monitor.js'
import { installTraceTable, tableExists } from '../../../src/trace/capture/nft-table.js'
import { rootOnly } from '../../helpers/root.js'

const ns = `sltm${process.pid % 10000}`

t.test('a monitor that subscribed after the table was added is armed by adding it again', rootOnly(), async (t) => {
  await addNetns(ns)
  t.teardown(() => deleteNetns(ns))
  // the race, made certain: the table is there before the monitor starts
  await installTraceTable(ns, [9080])
  const late = new TraceMonitor(ns)
  t.teardown(() => late.stop())
  await t.rejects(late.ready(1000), /did not report the trace table/, 'the event it never saw')
  // and armMonitors' own first add lost the same way (an add that makes no event): it adds the table again
  let installs = 0
  await armMonitors([late], async (n) => {
    installs++
    if (installs > 1) await installTraceTable(n, [9080])
  })
  t.equal(installs, 2, 'armed by the second add')
  t.ok(await tableExists(ns), 'the table is in place for the trace')
})
