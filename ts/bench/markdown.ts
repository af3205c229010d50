// The markdown report: one table of targets (each row: what is compared, the
// measured median with its min–max, the target, met or not), then the raw
// medians of every peer so a reader can check the ratios.
import type { BenchReport, Check, Measurement } from './results'
import { tally } from './results'
import { humanDuration, humanSize } from '../util/units'

/** A figure in its unit: `1.04×`, `3.20 ms`, `87.5 MiB`, `412 starts/s`. */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a'
  switch (unit) {
    case 'ratio':
      return `${value < 0.1 ? value.toFixed(3) : value.toFixed(2)}×`
    case 'ms':
      return humanDuration(value)
    case 'bytes':
      return humanSize(value)
    case 'MiB':
      return `${value.toFixed(1)} MiB`
    default:
      return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${unit}`
  }
}

function rangeText(c: Check): string {
  const [lo, hi] = c.range
  return `${formatValue(lo, c.unit)} – ${formatValue(hi, c.unit)}`
}

function targetText(c: Check): string {
  if (!c.target) return '(info)'
  return `${c.target.comparison === '<=' ? '≤' : '≥'} ${formatValue(c.target.limit, c.target.unit)}`
}

function metText(c: Check): string {
  return c.met === null ? '–' : c.met ? 'met' : '**not met**'
}

const esc = (s: string) => s.replace(/\|/g, '\\|')

export function checksTable(checks: readonly Check[]): string {
  const rows = [
    '| Scenario | Setting | Compared | Measured (median) | Min – max | Target | Result |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const c of checks) {
    const what = c.note ? `${c.what} (${c.note})` : c.what
    rows.push(`| ${esc(c.scenario)} | ${esc(c.setting)} | ${esc(what)} | ${formatValue(c.measured, c.unit)} | ${rangeText(c)} | ${targetText(c)} | ${metText(c)} |`)
  }
  return rows.join('\n')
}

export function measurementsTable(ms: readonly Measurement[]): string {
  const rows = ['| Measurement | Peer | Median | Min – max | Runs | Durable | Detail |', '|---|---|---|---|---|---|---|']
  for (const m of ms) {
    const detail = Object.entries(m.detail ?? {})
      .map(([k, v]) => `${k}=${typeof v === 'number' && /Bytes$/.test(k) ? humanSize(v) : v}`)
      .join(', ')
    const durable = m.durable === undefined ? '' : m.durable ? 'yes' : 'no'
    rows.push(
      `| ${esc(m.id)} | ${esc(m.label)} | ${formatValue(m.summary.median, m.unit)} | ${formatValue(m.summary.min, m.unit)} – ${formatValue(m.summary.max, m.unit)} | ${m.summary.n} | ${durable} | ${esc(detail)} |`,
    )
  }
  return rows.join('\n')
}

/** The whole markdown report of a run. */
export function renderMarkdown(report: BenchReport): string {
  const t = tally(report)
  const out: string[] = []
  out.push(`# reflink-pool benchmark${report.quick ? ' (--quick: fewer runs, smaller sizes)' : ''}`)
  out.push('')
  out.push(`Run ${report.startedAt} → ${report.finishedAt} with \`${report.command}\`.`)
  const m = report.machine
  out.push(`Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB RAM, Linux ${m.kernel}, Node ${m.node}${m.root ? ', root' : ', not root'}; load average ${m.loadAverage.start[0]} at start, ${m.loadAverage.end[0]} at the end.`)
  out.push(`Filesystems: ${Object.entries(report.filesystems).map(([k, v]) => `${k}: ${v}`).join('; ')}.`)
  out.push('')
  out.push(`Targets: ${t.met} met, ${t.notMet} not met${t.skipped ? `, ${t.skipped} parts skipped` : ''}.`)
  out.push('')
  out.push(checksTable(report.scenarios.flatMap((s) => s.checks)))
  out.push('')
  for (const s of report.scenarios) {
    for (const why of s.skipped ?? []) out.push(`- ${s.title}: skipped: ${why}`)
    if (s.error) out.push(`- ${s.title}: **failed**: ${s.error}`)
  }
  if (report.notes.length) {
    out.push('')
    out.push('Notes:')
    for (const n of report.notes) out.push(`- ${n}`)
  }
  out.push('')
  out.push('## Scenarios')
  for (const s of report.scenarios) {
    out.push('')
    out.push(`### ${s.title}`)
    out.push('')
    out.push(s.description)
    if (s.measurements.length) {
      out.push('')
      out.push(measurementsTable(s.measurements))
    }
  }
  return out.join('\n') + '\n'
}
