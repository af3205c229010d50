// Human output of the CLI: aligned tables and key/value lists; sizes and
// durations come from the neutral ts/util/units.ts (re-exported here).
// Machine output (--json) never goes through here; see output.ts.
export { humanDuration, humanSeconds, humanSize, parseSize, percent, SIZE_SYNTAX } from '../util/units'

export type Align = 'left' | 'right'

export interface Column<Row> {
  header: string
  value: (row: Row) => string
  align?: Align
  /** May be cut in the middle (with "…", keeping both ends) when the table is wider than the terminal; widest first. */
  shrink?: boolean
}

export interface TableOptions {
  /** Fit the table into this many columns (the terminal width); unlimited when undefined. */
  width?: number
}

/** Narrowest a shrinkable column gets: its header, and room for a recognisable prefix. */
const MIN_SHRUNK = 8

/** Render rows as an aligned, space-separated table with a header line. */
export function table<Row>(rows: Row[], columns: Column<Row>[], opts: TableOptions = {}): string {
  const cells = rows.map((row) => columns.map((c) => c.value(row)))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)))
  if (opts.width !== undefined) fitWidths(widths, columns, opts.width)
  const cut = (v: string, w: number) => {
    if (v.length <= w) return v
    const tail = Math.floor((w - 1) / 2)
    return v.slice(0, w - 1 - tail) + '…' + (tail > 0 ? v.slice(-tail) : '')
  }
  const line = (values: string[]) =>
    values
      .map((v, i) => {
        const text = cut(v, widths[i])
        return columns[i].align === 'right' ? text.padStart(widths[i]) : text.padEnd(widths[i])
      })
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n')
}

/** Narrow the widest shrinkable columns, one character at a time, until the table fits `width`. */
function fitWidths<Row>(widths: number[], columns: Column<Row>[], width: number): void {
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1)
  while (total() > width) {
    let widest = -1
    for (let i = 0; i < columns.length; i++) {
      const floor = Math.max(MIN_SHRUNK, columns[i].header.length)
      if (columns[i].shrink && widths[i] > floor && (widest < 0 || widths[i] > widths[widest])) widest = i
    }
    if (widest < 0) return // nothing left to shrink: let the terminal wrap
    widths[widest]--
  }
}

/** The terminal width of stdout, or undefined when stdout is not a terminal (pipes get whole lines). */
export function terminalWidth(stream: NodeJS.WritableStream = process.stdout): number | undefined {
  const s = stream as Partial<NodeJS.WriteStream>
  return s.isTTY === true && typeof s.columns === 'number' && s.columns > 0 ? s.columns : undefined
}

/** Break `text` into lines of at most `width` columns at spaces (no limit when width is undefined). */
export function wrap(text: string, width: number | undefined): string {
  if (width === undefined) return text
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  if (line) lines.push(line)
  return lines.join('\n')
}

/** Render key/value pairs as two aligned columns ("name:  value"). */
export function keyValues(pairs: Array<[string, string]>): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1))
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width)}  ${v}`).join('\n')
}
