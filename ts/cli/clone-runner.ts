// One template to many volumes through the pool's batch path (docs/design.md
// §7), in batches that are each all or nothing. Used by `reflink-pool clone`
// and by the demo, so both measure clones the same way.
import { CliError, UsageError } from './errors'
import { parseVid } from '../store/vid'
import { quote } from '../util/quote'
import type { Pool, Volume } from './pool-access'

export type CloneMode = 'copy' | 'snapshot'

export interface CloneOptions {
  /** copy: save-on-stop volumes holding a reflinked copy of the template's data now;
   *  snapshot: snap-on-start volumes of the template (the reflink happens at each start). */
  mode: CloneMode
  /** Volumes per batch: each batch is one group commit and all or nothing. */
  batchSize: number
  /** Targets that are volumes already are skipped (finishing an interrupted run) instead of refused. */
  skipExisting?: boolean
  signal?: AbortSignal
  onCloned?: (done: number, total: number) => void
}

export interface CloneResult {
  /** Every target, in order. */
  vids: string[]
  /** Volumes this run made, in order. */
  made: string[]
  /** Targets that existed already (--skip-existing). */
  skipped: string[]
  /** Wall time of the whole run, ms. */
  totalMs: number
  /** Group commits it took. */
  batches: number
  /** How the data was copied, e.g. { reflink: 100 } (empty in snapshot mode: nothing is copied yet). */
  methods: Record<string, number>
}

/**
 * A run that stopped part-way (an error, or Ctrl-C): the batch in progress made
 * nothing (all or nothing), earlier batches stand. Keeps the original error's
 * code and name (an interrupt stays an AbortError), says which volumes exist,
 * and advises --skip-existing only when it can help: when this run made some.
 */
export class CloneIncompleteError extends Error {
  readonly code: string
  constructor(readonly cause: unknown, readonly made: string[], readonly missing: string[], readonly skipped: string[]) {
    const first = cause instanceof Error ? cause.message.split('\n')[0] : String(cause)
    const code = (cause as { code?: string } | null)?.code ?? 'ERR_INTERNAL'
    const full = code === 'ENOSPC' || code === 'EDQUOT'
    const next = made.length === 0
      ? `nothing was cloned${full ? ': free space on the pool\'s filesystem first' : ''}`
      : `made ${made.length} of ${made.length + missing.length} volumes (each one complete), ${missing.length} not made: ` +
        `${full ? 'free space on the pool\'s filesystem, then ' : ''}re-run with --skip-existing to make the missing ones`
    super(`${first}; ${next}`)
    this.code = code
    this.name = (cause as Error | null)?.name === 'AbortError' ? 'AbortError' : 'CloneIncompleteError'
  }
}

/** `{n}` (no padding) or `{n:W}` (zero-padded to width W) in a target pattern. */
const COUNTER = /\{n(?::([1-9][0-9]?))?\}/g

/**
 * Expand target patterns: 'appvms/web-{n}/root' with count 3 -> web-1, web-2,
 * web-3; '{n:3}' pads to 3 digits (web-001). A name never depends on the
 * count, so a later run with a larger count makes the same names. Every
 * target is checked as a vid before anything is cloned (a usage error).
 */
export function expandTargets(targets: string[], count: number | undefined): string[] {
  const out: string[] = []
  for (const t of targets) {
    const counters = t.match(COUNTER)?.length ?? 0
    if (/[{}]/.test(t.replace(COUNTER, ''))) {
      throw new UsageError(`bad target pattern ${quote(t)}: the counter is written {n}, or {n:WIDTH} for zero-padded numbers (e.g. {n:3} -> 001)`)
    }
    if (count === undefined) {
      if (counters) throw new UsageError(`target ${quote(t)} has a counter {n}: give --count N to make N volumes from it`)
      out.push(t)
      continue
    }
    if (!counters) throw new UsageError(`--count needs a target with {n} in it, got ${quote(t)}`)
    for (let i = 1; i <= count; i++) out.push(t.replace(COUNTER, (_m, width?: string) => String(i).padStart(Number(width ?? 0), '0')))
  }
  for (const vid of out) {
    try {
      parseVid(vid)
    } catch (e) {
      throw new UsageError((e as Error).message, 'ERR_INVALID_VID')
    }
  }
  return out
}

export async function cloneVolumes(pool: Pool, template: Volume, vids: string[], opts: CloneOptions): Promise<CloneResult> {
  const started = performance.now()
  const existing = new Set((await pool.listVolumes()).map((v) => v.vid))
  const skipped = opts.skipExisting ? vids.filter((v) => existing.has(v)) : []
  const todo = opts.skipExisting ? vids.filter((v) => !existing.has(v)) : vids
  const clash = todo.filter((v) => existing.has(v))
  if (clash.length) {
    throw new CliError(
      `${clash.length} target${clash.length === 1 ? ' is a volume' : 's are volumes'} already (${clash.slice(0, 3).join(', ')}${clash.length > 3 ? ', ...' : ''}); ` +
        'nothing was cloned: add --skip-existing to clone only the missing ones',
      'ERR_VOLUME_EXISTS',
    )
  }
  const made: string[] = []
  const methods: Record<string, number> = {}
  let batches = 0
  for (let i = 0; i < todo.length; i += opts.batchSize) {
    const chunk = todo.slice(i, i + opts.batchSize)
    try {
      const r = await pool.cloneVolumes(template, chunk, {
        mode: opts.mode,
        signal: opts.signal,
        onProgress: (done) => opts.onCloned?.(made.length + done, todo.length),
      })
      for (const [m, n] of Object.entries(r.methods)) methods[m] = (methods[m] ?? 0) + n
    } catch (e) {
      throw new CloneIncompleteError(e, made, todo.slice(made.length), skipped)
    }
    made.push(...chunk)
    batches++
    opts.onCloned?.(made.length, todo.length)
  }
  return { vids, made, skipped, totalMs: performance.now() - started, batches, methods }
}
