// Figures: every reliability suite prints what it tried (trials, operations,
// violations) through t.log, and the full run collects the same objects into
// reliability-results.json.
import type { ExecutionContext } from 'ava'

export function logFigures(t: ExecutionContext<unknown>, suite: string, figures: Record<string, unknown>): void {
  t.log(`${suite}: ${JSON.stringify(figures)}`)
}

/** A count from the environment (the full run raises them), or the fast default of `npm test`. */
export function envCount(name: string, fallback: number): number {
  const v = Number(process.env[name])
  return Number.isSafeInteger(v) && v > 0 ? v : fallback
}
