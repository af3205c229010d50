// A one-line progress bar on stderr, drawn only when stderr is a terminal and
// the output is for humans: piped output and --json stay clean.
//
//   import appvms/web/root [########........]  48%  492 MiB/1.00 GiB  312 MiB/s  ETA 2s
//
// The rate is an average over the last few seconds (a sliding window), so a
// slow start or a burst does not skew the ETA for the rest of the run.
import { humanSeconds, humanSize } from './format'

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
  /** The clock in ms (tests); default performance.now. */
  now?: () => number
}

/** Redraw at most this often: a terminal does not need more, and writes cost. */
const REDRAW_MS = 100
/** The rate is measured over about this much recent time. */
const RATE_WINDOW_MS = 3000

/** Rate and ETA of a transfer from timestamped samples of `done`. */
export class RateMeter {
  private samples: Array<{ t: number; done: number }> = []

  add(t: number, done: number): void {
    this.samples.push({ t, done })
    while (this.samples.length > 2 && t - this.samples[1].t >= RATE_WINDOW_MS) this.samples.shift()
  }

  /** Units per second over the window, or null before there is a measurable interval. */
  rate(): number | null {
    const first = this.samples[0]
    const last = this.samples.at(-1)
    if (!first || !last || last.t - first.t < 200) return null
    return ((last.done - first.done) * 1000) / (last.t - first.t)
  }

  /** Seconds left to reach `total`, or null when unknown. */
  eta(total: number): number | null {
    const rate = this.rate()
    const last = this.samples.at(-1)
    if (rate === null || !last || rate <= 0 || total <= 0) return null
    return Math.max(0, total - last.done) / rate
  }
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr
  const enabled = opts.enabled ?? (stream.isTTY === true && process.env.TERM !== 'dumb')
  if (!enabled) return NOOP
  const now = opts.now ?? (() => performance.now())
  let total = opts.total ?? 0
  let last = -Infinity
  let lastDone = 0
  let drawn = false
  const meter = new RateMeter()
  const fmt = (n: number) => (opts.unit === 'bytes' ? humanSize(n) : String(n))

  function draw(done: number) {
    const rate = meter.rate()
    const eta = meter.eta(total)
    const counts = total > 0 ? `${fmt(done)}/${fmt(total)}` : fmt(done)
    const speed = rate === null ? '' : `  ${opts.unit === 'bytes' ? `${humanSize(rate)}/s` : `${rate.toFixed(rate < 10 ? 1 : 0)}/s`}`
    const left = eta === null || done >= total ? '' : `  ETA ${humanSeconds(eta)}`
    const tail = `${counts}${speed}${left}`
    const columns = stream.columns ?? 80
    // The line is label + ' ' + '[' bar '] NNN%  ' + tail: the bar gets what is left, minus a spare column
    // (writing the last column makes some terminals wrap).
    const width = Math.max(10, Math.min(40, columns - opts.label.length - tail.length - 11))
    const ratio = total > 0 ? Math.min(1, done / total) : 0
    const filled = Math.round(ratio * width)
    const bar = total > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%  ` : ''
    stream.write(`\r\x1b[2K${`${opts.label} ${bar}${tail}`.slice(0, columns - 1)}`)
    drawn = true
  }

  return {
    update(done, newTotal) {
      if (newTotal !== undefined) total = newTotal
      lastDone = done
      const t = now()
      meter.add(t, done)
      if (t - last < REDRAW_MS && done < total) return
      last = t
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
