// Every renderer's whole output on the three real runs, byte for byte against the outputs recorded in
// test/fixtures/trace-golden/: the report's internals can change shape (addresses as fields, not text)
// while what the user reads stays the same. A deliberate change of output: rerun with
// UPDATE_TRACE_GOLDEN=1 and review the diff of the golden files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { renderJson } from '../../src/trace/render/json.js'
import { renderSvg } from '../../src/trace/render/svg.js'
import { renderText } from '../../src/trace/render/text.js'
import { renderWalkthroughJson, renderWalkthroughText } from '../../src/trace/walkthrough/render.js'
import { renderWalkthroughSvg } from '../../src/trace/walkthrough/render-svg.js'
import { walkthrough } from '../../src/trace/walkthrough/verdicts.js'
import { fixtureReport, type FixtureSet } from './fixture.js'

const dir = fileURLToPath(new URL('../fixtures/trace-golden/', import.meta.url))
const update = process.env.UPDATE_TRACE_GOLDEN === '1'

for (const set of ['trace', 'trace-call', 'trace-nosidecar'] as FixtureSet[]) {
  t.test(`${set}: text, JSON and SVG, plain and --walkthrough, as recorded`, async (t) => {
    const report = fixtureReport(set)
    const w = walkthrough(report)
    const outputs: Record<string, string> = {
      txt: renderText(report),
      json: renderJson(report),
      svg: renderSvg(report),
      'walk.txt': renderWalkthroughText(w),
      'walk.json': renderWalkthroughJson(w),
      'walk.svg': renderWalkthroughSvg(w),
    }
    for (const [ext, got] of Object.entries(outputs)) {
      const file = `${dir}${set}.${ext}`
      if (update) {
        mkdirSync(dir, { recursive: true })
        writeFileSync(file, got)
      }
      t.ok(existsSync(file), `${set}.${ext} recorded`)
      t.equal(got, readFileSync(file, 'utf8'), `${set}.${ext} unchanged`)
    }
  })
}
