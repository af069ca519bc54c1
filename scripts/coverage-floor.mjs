#!/usr/bin/env node
// After `tap` in `npm test`: the coverage of src/ against its floors, said as a pass or a fail
// (README, Development). tap itself only compares with .taprc's thresholds, set to 0 there, so that
// it prints no "ERROR: incomplete coverage" comment that reads like a failed run when none failed.
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** Lines, branches, statements at 90%; functions at 80% (V8 counts every arrow, README says why). */
const FLOORS = { lines: 90, branches: 90, statements: 90, functions: 80 }

const summaryFile = fileURLToPath(new URL('../.tap/report/coverage-summary.json', import.meta.url))
if (!existsSync(summaryFile)) {
  console.log('coverage: not measured (no coverage summary: run the whole suite with coverage on)')
  process.exit(1)
}
const { total } = JSON.parse(readFileSync(summaryFile, 'utf8'))
// Read once: a later run with coverage off must not pass on this run's numbers.
rmSync(summaryFile)
const measured = Object.entries(FLOORS).map(([kind, floor]) => ({ kind, floor, pct: Number(total[kind].pct) }))
const below = measured.filter(({ pct, floor }) => pct < floor)
const said = measured.map(({ kind, pct, floor }) => `${kind} ${pct}% (floor ${floor}%)`).join(', ')
console.log(below.length === 0 ? `coverage: ok: ${said}` : `coverage: below floor: ${said}`)
process.exitCode = below.length === 0 ? 0 : 1
