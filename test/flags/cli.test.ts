// The flags as a user meets them through the CLI: a missing value or a bad --lab is refused with exit 2
// before anything runs. As root the CLI runs as nobody, so a flag that slipped through would stop at the
// root check of lab up instead of building a lab. Without NODE_OPTIONS: tap's would have the child
// write coverage files where nobody may not. The labs are looked up in an empty state folder of the test's
// own, so a lab the user has up does not change what the CLI says.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { repoRoot } from '../helpers/pods.js'

const stateDir = mkdtempSync(join(tmpdir(), 'slt-cli-state-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))

function cli(args: string[], cwd = repoRoot): Promise<{ code: number; stdout: string; stderr: string }> {
  const nobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  return new Promise((resolve) => {
    execFile(
      'env',
      ['-u', 'NODE_OPTIONS', `SIDECAR_LAB_STATE_DIR=${stateDir}`, process.execPath, join(repoRoot, 'dist/cli.js'), ...args],
      { timeout: 20_000, cwd, ...nobody },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

const cases: [string[], string][] = [
  [['lab', 'status', '--lab'], 'error: --lab: give a value (--lab NAME)\n'],
  [['lab', 'up', '--mode'], 'error: --mode: give a value (--mode REDIRECT|TPROXY)\n'],
  [['lab', 'up', '--lab', 'slt-flags', '--mode', 'NAT'], 'error: --mode: "NAT" is not one of REDIRECT, TPROXY\n'],
  [['lab', 'up', '--lab', 'slt-flags', '--relay', 'fast'], 'error: --relay: "fast" is not one of node, native\n'],
  [['lab', 'up', '--relay'], 'error: --relay: give a value (--relay node|native)\n'],
  [['lab', 'status', '--relay', 'native'], "error: --relay goes with 'lab up', not 'lab status'\n"],
  [['trace', '--port'], 'error: --port: give a value (--port N)\n'],
  [['trace', '--lab', '--json'], 'error: --lab: give a value (--lab NAME)\n'],
  [['trace', '--port', '-1'], 'error: --port: -1 is not a port (1-65535)\n'],
  [['trace', '--json=yes'], "error: --json takes no value (see 'node dist/cli.js trace --help')\n"],
  [
    ['trace', 'stray'],
    "error: unexpected argument \"stray\": only 'trace --dns' takes one (a name) (see 'node dist/cli.js trace --help')\n",
  ],
  [['demo', '--lab', 'Bad_Name'], 'error: --lab: lab name "Bad_Name" must be 1-24 characters of a-z, 0-9 and -, starting with a letter\n'],
  [['demo', '--lab'], 'error: --lab: give a value (--lab NAME)\n'],
  [['demo', '--duration', '0'], 'error: --duration: 0 is out of range (1 to 600)\n'],
  [['demo', '--connections', '-2'], 'error: --connections: -2 is out of range (1 to 1000)\n'],
  [['demo', '--relay', 'fast'], 'error: --relay: "fast" is not one of node, native\n'],
  [
    ['ztunnel'],
    "error: no pods to serve: give --zds PATH (the node agent's socket, e.g. /var/run/ztunnel/ztunnel.sock) or --pod NAME=NETNS\n",
  ],
  [
    ['ztunnel', '--pod', 'Web=/run/netns/x'],
    'error: --pod "Web=/run/netns/x": expected NAME=NETNS, a pod name (lower case, digits, \'-\') and an absolute path to its network namespace\n',
  ],
  [['ztunnel', '--pod', 'a=/x,a=/y'], 'error: --pod: a is given twice\n'],
  [['ztunnel', '--zds', '/z', '--relay', 'fast'], 'error: --relay: "fast" is not one of node, native\n'],
  [['ztunnel', '--pod', 'a=/x', '--admin-port', '70000'], 'error: --admin-port: 70000 is out of range (0 to 65535)\n'],
  [['cni-agent', '--zds', '/z'], 'error: sidecar-lab cni-agent needs --zds PATH and --pods FILE (see --help)\n'],
  [['cni-agent', '--zds', '/z', '--pods', '/nonexistent.json'], 'error: --pods "/nonexistent.json": ENOENT\n'],
  [['proxy', '--uid'], 'error: --uid: give a value (--uid UID)\n'],
  [
    ['proxy', 'stray'],
    "error: unexpected argument \"stray\": 'sidecar-lab proxy' takes only flags (see 'node dist/cli.js proxy --help')\n",
  ],
  [['lab', 'exec', 'productpage', '--uid', 'root', '--', 'true'], 'error: --uid: "root" is not a whole number\n'],
  [['lab', 'status', '--mode', 'TPROXY'], "error: --mode goes with 'lab up', not 'lab status'\n"],
  [['lab', 'down', '--uid', '0'], "error: --uid goes with 'lab exec', not 'lab down'\n"],
  [['lab', 'down', '--json'], "error: --json goes with 'lab status' or 'lab logs', not 'lab down'\n"],
  [['lab', 'status', '-f'], "error: --follow goes with 'lab logs', not 'lab status'\n"],
  [['lab', 'status', '--log-format', 'yaml'], 'error: --log-format: expected json or text, not "yaml"\n'],
  [['proxy', '--log-format', 'pretty'], 'error: --log-format: expected json or text, not "pretty"\n'],
]

for (const [argv, stderr] of cases) {
  t.test(argv.join(' '), async (t) => {
    const r = await cli(argv)
    t.equal(r.stderr, stderr)
    t.equal(r.code, 2)
    t.equal(r.stdout, '', 'nothing ran')
  })
}

// The package is private: from the clone, `sidecar-lab` is no command, so a message names `node dist/cli.js`
// (the path as run), and --lab only when the lab is not the default.
const suggestions: [string[], string][] = [
  [['lab', 'exec', 'productpage', '--', 'true'], "error: lab sidecar-lab is not up: run 'node dist/cli.js lab up' first\n"],
  [['trace', '--lab', 'other'], "error: lab other is not up: run 'node dist/cli.js lab up --lab other' first\n"],
  [['lab', 'up', '--bogus'], "error: unknown flag --bogus for 'sidecar-lab lab' (see 'node dist/cli.js lab --help')\n"],
]
for (const [argv, stderr] of suggestions) {
  t.test(`${argv.join(' ')}: the suggested command runs as typed`, async (t) => {
    const r = await cli(argv)
    t.equal(r.stderr, stderr)
    t.equal(r.code, 2)
  })
}

t.test('from another folder, the path to the CLI as run', async (t) => {
  const r = await cli(['lab', 'rules', '--lab', 'other'], '/')
  t.equal(r.stderr, `error: lab other is not up: run 'node ${join(repoRoot, 'dist/cli.js')} lab up --lab other' first\n`)
})

t.test('the help of lab, proxy and iptables stays under 100 columns', async (t) => {
  for (const command of ['lab', 'proxy', 'iptables']) {
    const r = await cli([command, '--help'])
    t.equal(r.code, 0)
    t.same(
      r.stdout.split('\n').filter((l) => l.length >= 100),
      [],
      `${command} --help`,
    )
  }
})
