// A one-line progress bar on stderr, drawn only when stderr is a terminal and
// the output is for humans: piped output and --json stay clean.
import { humanSize } from './format'

export interface Progress {
  /** Report `done` of `total` units (bytes or items). */
  update(done: number, total?: number): void
  /** Erase the bar (call before printing the result). */
  done(): void
}

const NOOP: Progress = { update() {}, done() {} }

export interface ProgressOptions {
  label: string
  /** 'bytes' shows human sizes, 'items' shows counts. */
  unit: 'bytes' | 'items'
  total?: number
  /** Force on/off (tests); by default on only for a TTY stderr. */
  enabled?: boolean
  stream?: NodeJS.WriteStream
}

/** Redraw at most this often: a terminal does not need more, and writes cost. */
const REDRAW_MS = 100

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr
  const enabled = opts.enabled ?? (stream.isTTY === true && process.env.TERM !== 'dumb')
  if (!enabled) return NOOP
  let total = opts.total ?? 0
  let last = 0
  let lastDone = 0
  let drawn = false
  const started = Date.now()
  const fmt = (n: number) => (opts.unit === 'bytes' ? humanSize(n) : String(n))

  function draw(done: number) {
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - opts.label.length - 40))
    const ratio = total > 0 ? Math.min(1, done / total) : 0
    const filled = Math.round(ratio * width)
    const seconds = (Date.now() - started) / 1000
    const rate = seconds > 0 && opts.unit === 'bytes' ? `  ${humanSize(done / seconds)}/s` : ''
    const counts = total > 0 ? `${fmt(done)}/${fmt(total)}` : fmt(done)
    const bar = total > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%  ` : ''
    stream.write(`\r\x1b[2K${opts.label} ${bar}${counts}${rate}`)
    drawn = true
  }

  return {
    update(done, newTotal) {
      if (newTotal !== undefined) total = newTotal
      lastDone = done
      const now = Date.now()
      if (now - last < REDRAW_MS && done < total) return
      last = now
      draw(done)
    },
    done() {
      if (drawn) {
        draw(lastDone)
        stream.write('\r\x1b[2K')
      }
      drawn = false
    },
  }
}
