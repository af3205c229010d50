// Human output of the CLI: sizes, durations and aligned tables.
// Machine output (--json) never goes through here; see output.ts.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 1536 -> "1.5 KiB"; null/undefined -> "-" (a pool on a missing disk has no size). */
export function humanSize(bytes: number | bigint | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-'
  let n = Number(bytes)
  let unit = 0
  while (Math.abs(n) >= 1024 && unit < UNITS.length - 1) {
    n /= 1024
    unit++
  }
  if (unit === 0) return `${n} B`
  return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ${UNITS[unit]}`
}

/** Milliseconds as "850 µs", "12.3 ms" or "4.20 s". */
export function humanDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

/** Parse "10G", "512MiB", "4096", "1.5g" into bytes; returns null when it is not a size. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$/i.exec(text)
  if (!m) return null
  const power = ' kmgtp'.indexOf(m[2].toLowerCase() || ' ')
  const bytes = Number(m[1]) * 1024 ** power
  if (!Number.isSafeInteger(bytes)) return null
  return bytes
}

export type Align = 'left' | 'right'

export interface Column<Row> {
  header: string
  value: (row: Row) => string
  align?: Align
}

/** Render rows as an aligned, space-separated table with a header line. */
export function table<Row>(rows: Row[], columns: Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((c) => c.value(row)))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)))
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i].align === 'right' ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n')
}

/** Render key/value pairs as two aligned columns ("name:  value"). */
export function keyValues(pairs: Array<[string, string]>): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1))
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width)}  ${v}`).join('\n')
}

/** Percentage with one decimal, "-" when the whole is zero. */
export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-'
}
