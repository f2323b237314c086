// The error catalogue: every class in src/errors.ts carries its own stable SIDECAR_ERR_* code, so callers and
// tests can match on the code; two classes sharing one would make a match ambiguous.
import t from 'tap'
import * as errors from '../src/errors.js'

// Each constructor takes strings first (message parts); two will do for every one of them.
type Ctor = new (a: string, b: string) => errors.SidecarError
const classes = Object.entries(errors)
  .filter(([, value]) => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof errors.SidecarError)
  .map(([name, value]) => [name, value as unknown as Ctor] as const)

t.test('every error class has a code of its own, named SIDECAR_ERR_*', async (t) => {
  t.ok(classes.length >= 10, `the catalogue has its classes (${classes.length})`)
  const owners = new Map<string, string>()
  for (const [name, Class] of classes) {
    const err = new Class('x', 'y')
    t.ok(err instanceof errors.SidecarError, `${name} is a SidecarError`)
    t.match(err.code, /^SIDECAR_ERR_[A-Z0-9_]+$/, `${name}: ${err.code}`)
    t.equal(err.name, name, `${name}: its name is the class name`)
    t.notOk(owners.has(err.code), `${err.code} belongs to ${name} only${owners.has(err.code) ? ` (also ${owners.get(err.code)})` : ''}`)
    owners.set(err.code, name)
  }
})
