// Sizes and durations as people write and read them. Neutral: used by the CLI
// and the benchmark harness alike, and imports nothing of the project.
//
// Sizes follow GNU coreutils (`truncate -s`): a plain number is bytes;
// K M G T P (also k m g t) and KiB MiB GiB TiB PiB are powers of 1024;
// KB MB GB TB PB are powers of 1000. Printed sizes use the binary units, so
// what the tool prints can be typed back.

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** The size syntax in one line, for --help texts. */
export const SIZE_SYNTAX =
  'SIZE is bytes, or a number with a unit as in GNU truncate -s: K M G T (or KiB MiB GiB TiB) are powers of 1024, KB MB GB TB powers of 1000'

/** 1536 -> "1.50 KiB"; null/undefined -> "-" (a pool on a missing disk has no size). */
export function humanSize(bytes: number | bigint | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-'
  let n = Number(bytes)
  let unit = 0
  while (Math.abs(n) >= 1024 && unit < BINARY_UNITS.length - 1) {
    n /= 1024
    unit++
  }
  if (unit === 0) return `${n} B`
  return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ${BINARY_UNITS[unit]}`
}

/** Milliseconds as "850 µs", "12.3 ms" or "4.20 s". */
export function humanDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`
  return `${(ms / 1000).toFixed(2)} s`
}

/** Seconds as "42s", "3m05s" or "1h02m", for an ETA. */
export function humanSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

const POWERS: Record<string, number> = { K: 1, M: 2, G: 3, T: 4, P: 5 }

/**
 * Parse a size as GNU `truncate -s` does ("4096", "10G", "10GiB", "10GB");
 * null when it is not one (fractions, signs, "10gb", "1e3"); Infinity when it is
 * one beyond 2^53 - 1 (the CLI says "too large" rather than "not a size").
 */
export function parseSize(text: string): number | null {
  const m = /^(\d+)(?:([KMGTP]|[kmgt])(iB|B)?)?$/.exec(text)
  if (!m) return null
  const power = m[2] === undefined ? 0 : POWERS[m[2].toUpperCase()]
  const base = m[3] === 'B' ? 1000 : 1024
  const bytes = Number(m[1]) * base ** power
  return Number.isSafeInteger(bytes) ? bytes : Infinity
}

/** Percentage with one decimal, "-" when the whole is zero. */
export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-'
}
