// The result model of a benchmark run: what the JSON file holds (schema
// `reflink-pool-bench/1`, documented in docs/bench-schema.md), what the
// markdown table and the chart are drawn from. A target is judged here and
// nowhere else, so the table, the JSON and the chart always agree.
import { pairedRatios, summarize, type Summary } from '../util/stats'

export const SCHEMA = 'reflink-pool-bench/1'

export type Comparison = '<=' | '>='

/** One peer (or one quantity) measured in a scenario. */
export interface Measurement {
  /** Stable id, `<scenario>/<setting>/<peer>`, e.g. `clone/xfs/1000-extents/copyFile`. */
  id: string
  /** Human name of the peer, e.g. `cp --reflink=always`. */
  label: string
  /** Unit of `samples` and `summary`: `ms`, `starts/s`, `bytes`, `MiB`. */
  unit: string
  samples: number[]
  summary: Summary
  /** Whether the peer makes its result durable (fsync of file and directory). */
  durable?: boolean
  /** Facts about what ran: copy method, extent count, bytes moved, allocated bytes. */
  detail?: Record<string, string | number | boolean | null>
}

export interface Target {
  comparison: Comparison
  limit: number
  /** `ratio` for peer-relative targets, else the unit of `measured` (`ms`, `MiB`). */
  unit: string
}

/** One row of the table: a measured figure against its target (or informational when `target` is null). */
export interface Check {
  id: string
  scenario: string
  /** The setting: filesystem, size, extent count. */
  setting: string
  /** What is compared, e.g. `copyFile / floor`. */
  what: string
  /** Ratio of the two peers' medians, or the absolute median. */
  measured: number
  /** Min–max over the rounds (per-round ratios for a ratio row). */
  range: [number, number]
  unit: string
  target: Target | null
  /** null for an informational row. */
  met: boolean | null
  note?: string
}

export interface ScenarioResult {
  id: string
  title: string
  /** One line on what the scenario measures. */
  description: string
  measurements: Measurement[]
  checks: Check[]
  /** Why the scenario (or part of it) did not run; never counted as met. */
  skipped?: string[]
  /** A failure while running; the scenario's targets count as not met. */
  error?: string
}

export interface Machine {
  kernel: string
  cpus: number
  cpuModel: string
  memoryMiB: number
  node: string
  root: boolean
  uvThreadpoolSize: string | null
  /** 1/5/15-minute load averages when the run started and ended: a busy machine makes every figure noisier. */
  loadAverage: { start: number[]; end: number[] }
}

export interface BenchReport {
  schema: typeof SCHEMA
  startedAt: string
  finishedAt: string
  quick: boolean
  command: string
  machine: Machine
  /** Where the scenarios ran: scratch loop filesystems, or the current directory when not root. */
  filesystems: Record<string, string>
  /** Sizes and round counts actually used. */
  settings: Record<string, number | string | boolean>
  notes: string[]
  scenarios: ScenarioResult[]
}

export function measurement(id: string, label: string, unit: string, samples: number[], extra: Partial<Measurement> = {}): Measurement {
  return { id, label, unit, samples, summary: summarize(samples), ...extra }
}

function judge(target: Target | null, measured: number): boolean | null {
  if (!target) return null
  if (!Number.isFinite(measured)) return false
  return target.comparison === '<=' ? measured <= target.limit : measured >= target.limit
}

/**
 * A peer-relative row: the ratio of the two medians (subject / baseline) of
 * samples taken in the same interleaved rounds, with the min–max of the
 * per-round ratios as its range.
 */
export function ratioCheck(
  base: Omit<Check, 'measured' | 'range' | 'unit' | 'met' | 'target'>,
  subject: readonly number[],
  baseline: readonly number[],
  target: Omit<Target, 'unit'> | null,
): Check {
  const measured = summarize(subject).median / summarize(baseline).median
  const perRound = summarize(pairedRatios(subject, baseline))
  const t = target ? { ...target, unit: 'ratio' } : null
  return { ...base, measured, range: [perRound.min, perRound.max], unit: 'ratio', target: t, met: judge(t, measured) }
}

/** An absolute row (peak RSS, event-loop p99, open time): median and min–max of `samples`. */
export function absoluteCheck(
  base: Omit<Check, 'measured' | 'range' | 'unit' | 'met' | 'target'>,
  samples: readonly number[],
  unit: string,
  target: Omit<Target, 'unit'> | null,
): Check {
  const s = summarize(samples)
  const t = target ? { ...target, unit } : null
  return { ...base, measured: s.median, range: [s.min, s.max], unit, target: t, met: judge(t, s.median) }
}

/** Targets of the run: how many were met, missed, and not measured. */
export function tally(report: Pick<BenchReport, 'scenarios'>): { met: number; notMet: number; skipped: number } {
  let met = 0
  let notMet = 0
  let skipped = 0
  for (const s of report.scenarios) {
    for (const c of s.checks) {
      if (c.met === true) met++
      else if (c.met === false) notMet++
    }
    skipped += s.skipped?.length ?? 0
    if (s.error) notMet++
  }
  return { met, notMet, skipped }
}
