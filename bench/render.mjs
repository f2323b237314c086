#!/usr/bin/env node
// @ts-check
// Renders a results JSON again (after a change to the reports): writes latest.md and latest.svg beside it.
// usage: node bench/render.mjs [bench/results/latest.json]
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { checkGoals } from './goals.mjs'
import { root } from './harness.mjs'
import { renderMarkdown } from './report-md.mjs'
import { renderSvg } from './report-svg.mjs'
import { summarise } from './stats.mjs'

const file = process.argv[2] ?? join(root, 'bench/results/latest.json')
const result = JSON.parse(readFileSync(file, 'utf8'))
result.summary = summarise(result.samples)
// a run made before the goals check has none; one made after gets them from the samples again
if (result.goals) result.goals = checkGoals(result.summary)
writeFileSync(join(dirname(file), 'latest.md'), renderMarkdown(result))
writeFileSync(join(dirname(file), 'latest.svg'), renderSvg(result))
console.log(`rendered ${join(dirname(file), 'latest.{md,svg}')}`)
