// The chart of a run, as a hand-written SVG (no plotting dependency): one bar
// per target, on a log scale of "share of the budget" (measured / limit for a
// `≤` target, limit / measured for a `≥` one), so 1 is the target line for
// every row whatever its unit and anything left of it is met. The bar's label
// keeps the real figures.
import type { BenchReport, Check } from './results'
import { formatValue } from './markdown'

const ROW = 22
const LABEL_W = 430
const PLOT_W = 420
const VALUE_W = 210
const TOP = 56
const LO = 0.1
const HI = 10

/** Budget share: < 1 is within the target. */
export function budgetShare(c: Check): number {
  if (!c.target) return NaN
  return c.target.comparison === '<=' ? c.measured / c.target.limit : c.target.limit / c.measured
}

function x(share: number): number {
  const v = Math.min(HI, Math.max(LO, share))
  return LABEL_W + ((Math.log10(v) - Math.log10(LO)) / (Math.log10(HI) - Math.log10(LO))) * PLOT_W
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

export function renderSvg(report: BenchReport): string {
  const rows = report.scenarios.flatMap((s) => s.checks).filter((c) => c.target)
  const width = LABEL_W + PLOT_W + VALUE_W
  const height = TOP + rows.length * ROW + 40
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  out.push(`<text x="8" y="20" font-size="15" font-weight="bold">reflink-pool benchmark${report.quick ? ' (--quick)' : ''}: measured / target (log scale, left of the line = met)</text>`)
  out.push(`<text x="8" y="38" fill="#555">${esc(report.startedAt)} · ${report.machine.cpus} CPU · Linux ${esc(report.machine.kernel)} · Node ${esc(report.machine.node)}</text>`)
  for (const tick of [0.1, 0.3, 1, 3, 10]) {
    const tx = x(tick)
    out.push(`<line x1="${tx}" y1="${TOP - 6}" x2="${tx}" y2="${TOP + rows.length * ROW}" stroke="${tick === 1 ? '#000' : '#ddd'}" stroke-width="${tick === 1 ? 2 : 1}"/>`)
    out.push(`<text x="${tx}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle" fill="#555">${tick}</text>`)
  }
  rows.forEach((c, i) => {
    const y = TOP + i * ROW
    const share = budgetShare(c)
    const color = c.met ? '#2e8b57' : '#c0392b'
    const label = `${c.scenario} · ${c.setting} · ${c.what}`
    out.push(`<text x="${LABEL_W - 8}" y="${y + 15}" text-anchor="end">${esc(label)}</text>`)
    if (Number.isFinite(share)) {
      out.push(`<rect x="${LABEL_W}" y="${y + 4}" width="${Math.max(1, x(share) - LABEL_W).toFixed(1)}" height="${ROW - 8}" fill="${color}"/>`)
    }
    const target = `${c.target!.comparison === '<=' ? '≤' : '≥'} ${formatValue(c.target!.limit, c.target!.unit)}`
    out.push(`<text x="${LABEL_W + PLOT_W + 8}" y="${y + 15}" fill="${color}">${esc(`${formatValue(c.measured, c.unit)} (target ${target})`)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
