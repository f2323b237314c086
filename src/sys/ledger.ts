// What a process creates that outlives it (network namespaces, labs), appended to the file that
// SIDECAR_LAB_LEDGER names, before it is created. The test runner sets it for every process of a run, so an
// interrupted run can still be swept: the runner's own sweep, the next run's, or `lab down --all`
// (src/lab/sweep.ts) read it back. Unset, nothing is written.
import { appendFileSync, existsSync, readFileSync } from 'node:fs'

export type LedgerKind = 'netns' | 'lab'

export interface LedgerEntry {
  kind: LedgerKind
  name: string
}

export function recordCreated(kind: LedgerKind, name: string): void {
  const file = process.env.SIDECAR_LAB_LEDGER
  if (file) appendFileSync(file, `${kind} ${name}\n`)
}

export function readLedger(file: string): LedgerEntry[] {
  if (!existsSync(file)) return []
  const entries = new Map<string, LedgerEntry>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(netns|lab) (\S+)$/.exec(line)
    if (m) entries.set(line, { kind: m[1] as LedgerKind, name: m[2]! })
  }
  return [...entries.values()]
}
