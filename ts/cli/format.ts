// Human output of the CLI: aligned tables and key/value lists; sizes and
// durations come from the neutral ts/util/units.ts (re-exported here).
// Machine output (--json) never goes through here; see output.ts.
import { UsageError } from './errors'
export { humanDuration, humanSeconds, humanSize, parseSize, percent, SIZE_SYNTAX } from '../util/units'

export type Align = 'left' | 'right'

export interface Column<Row> {
  header: string
  value: (row: Row) => string
  align?: Align
  /** May be cut in the middle (with "…", keeping both ends) when the table is wider than the terminal; widest first. */
  shrink?: boolean
  /**
   * May be left out when the table is wider than the terminal even after shrinking:
   * lowest first. Columns without it (the vid) are always shown whole.
   */
  drop?: number
}

export interface TableOptions {
  /** Fit the table into this many columns (the terminal width); unlimited when undefined. */
  width?: number
}

/** A rendered table, with the headers of the columns left out to fit the width. */
export interface FittedTable {
  text: string
  dropped: string[]
}

/** Narrowest a shrinkable column gets: its header, and room for a recognisable prefix. */
const MIN_SHRUNK = 8

/** Render rows as an aligned, space-separated table with a header line. */
export function table<Row>(rows: Row[], columns: Column<Row>[], opts: TableOptions = {}): string {
  return fittedTable(rows, columns, opts).text
}

/**
 * table(), also saying which columns were left out: to fit `width`, the
 * shrinkable columns are narrowed to their floor, then the droppable ones are
 * left out lowest `drop` first; a column with neither is never cut.
 */
export function fittedTable<Row>(rows: Row[], columns: Column<Row>[], opts: TableOptions = {}): FittedTable {
  let shown = columns
  const dropOrder = columns.filter((c) => c.drop !== undefined).sort((a, b) => a.drop! - b.drop!)
  for (;;) {
    const cells = rows.map((row) => shown.map((c) => c.value(row)))
    const widths = shown.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)))
    const fits = opts.width === undefined || fitWidths(widths, shown, opts.width)
    if (!fits && dropOrder.length > 0) {
      const victim = dropOrder.shift()!
      shown = shown.filter((c) => c !== victim)
      continue
    }
    const dropped = columns.filter((c) => !shown.includes(c)).map((c) => c.header)
    return { text: [shown.map((c) => c.header), ...cells].map((values) => alignedLine(values, shown, widths)).join('\n'), dropped }
  }
}

function alignedLine<Row>(values: string[], columns: Column<Row>[], widths: number[]): string {
  return values
    .map((v, i) => {
      const text = cutMiddle(v, widths[i])
      return columns[i].align === 'right' ? text.padStart(widths[i]) : text.padEnd(widths[i])
    })
    .join('  ')
    .trimEnd()
}

function cutMiddle(v: string, w: number): string {
  if (v.length <= w) return v
  const tail = Math.floor((w - 1) / 2)
  return v.slice(0, w - 1 - tail) + '…' + (tail > 0 ? v.slice(-tail) : '')
}

/** Rows for scripts (`-H`, as `zfs list -H`): no header, one tab between fields, nothing padded or cut. */
export function scriptedRows<Row>(rows: Row[], columns: Column<Row>[]): string {
  return rows.map((row) => columns.map((c) => c.value(row)).join('\t')).join('\n')
}

/**
 * Pick columns by name for `-o a,b,c` (names are the headers, any case), in the
 * order given; an unknown name is a usage error that lists the known ones.
 */
export function pickColumns<Row>(columns: Column<Row>[], names: string): Column<Row>[] {
  return names.split(',').map((name) => {
    const found = columns.find((c) => c.header.toLowerCase() === name.trim().toLowerCase())
    if (!found) throw new UsageError(`unknown column "${name.trim()}" for -o: use ${columns.map((c) => c.header.toLowerCase()).join(',')}`)
    return found
  })
}

/** Narrow the widest shrinkable columns, one character at a time; whether the table then fits `width`. */
function fitWidths<Row>(widths: number[], columns: Column<Row>[], width: number): boolean {
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1)
  while (total() > width) {
    let widest = -1
    for (let i = 0; i < columns.length; i++) {
      const floor = Math.max(MIN_SHRUNK, columns[i].header.length)
      if (columns[i].shrink && widths[i] > floor && (widest < 0 || widths[i] > widths[widest])) widest = i
    }
    if (widest < 0) return false
    widths[widest]--
  }
  return true
}

/**
 * The width tables fit: the terminal's when stdout is one, else $COLUMNS when
 * set (as ls does), else undefined (pipes get whole lines).
 */
export function terminalWidth(stream: NodeJS.WritableStream = process.stdout): number | undefined {
  const s = stream as Partial<NodeJS.WriteStream>
  if (s.isTTY === true && typeof s.columns === 'number' && s.columns > 0) return s.columns
  const env = Number(process.env.COLUMNS)
  return Number.isSafeInteger(env) && env > 0 ? env : undefined
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
