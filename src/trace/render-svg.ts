import type { TraceReport } from './run.js'
export function renderSvg(_report: TraceReport): string {
  return '<svg xmlns="http://www.w3.org/2000/svg"/>'
}
