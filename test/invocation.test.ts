// The command messages suggest ("run '… lab up' first") is the one the user can run: `node dist/cli.js` from
// the clone (no `sidecar-lab` command exists unless linked), the linked name when started from PATH, and
// --lab only when the lab is not the default one.
import t from 'tap'
import { LabNotUpError } from '../src/errors.js'
import { cliCommand, invocation } from '../src/invocation.js'

t.test('how the CLI was started decides the command shown', async (t) => {
  t.equal(invocation('/src/sl/dist/cli.js', '/src/sl', '/usr/bin:/bin'), 'node dist/cli.js', 'from the clone')
  t.equal(invocation('/src/sl/dist/cli.js', '/tmp', '/usr/bin'), 'node /src/sl/dist/cli.js', 'from elsewhere: the whole path')
  t.equal(invocation('/src/sl/dist/cli.js', '/', '/usr/bin'), 'node /src/sl/dist/cli.js', 'from /: the whole path')
  t.equal(invocation('/usr/local/bin/sidecar-lab', '/tmp', '/usr/bin:/usr/local/bin'), 'sidecar-lab', 'a linked bin on PATH')
  t.equal(invocation('/opt/my lab/dist/cli.js', '/tmp', ''), "node '/opt/my lab/dist/cli.js'", 'a path with a space, quoted')
  t.equal(invocation(undefined, '/tmp', ''), 'sidecar-lab')
})

t.test('--lab is named only when it is not the default', async (t) => {
  t.equal(cliCommand('lab up', 'sidecar-lab'), 'sidecar-lab lab up')
  t.equal(cliCommand('lab up', 'other'), 'sidecar-lab lab up --lab other')
  t.equal(new LabNotUpError('sidecar-lab').message, "lab sidecar-lab is not up: run 'sidecar-lab lab up' first")
})
