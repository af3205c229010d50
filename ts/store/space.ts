// The space guard (docs/design.md §7, "Space guard"): a pool's `minFree` floor,
// and the check every operation that allocates runs before it changes anything.
//
// What the check can promise is limited by thin provisioning: a reflink clone or
// start costs only metadata now, but the running VM may later write up to the
// volume's size, and nothing the pool does can stop it. So the check counts what
// the operation itself writes (its cost, below) and refuses when that would leave
// less than the floor; the floor is the headroom left for running volumes'
// writes. It is advisory: two processes checking at once may both pass.
import { humanSize } from '../util/units'
import { poolError } from './fail'
import type { PoolContext } from './context'
import type { MinFree } from './types'


/** What a new file costs before any data (inode, extent records, directory entry): an allowance, not a measurement. */
export const METADATA_BYTES = 64 * 1024

const PERCENT = /^(\d{1,2}(\.\d{1,6})?|100)%$/

/** `value` as a MinFree (a safe non-negative integer, or 'N%' with 0 <= N <= 100); else ERR_INVALID_ARG_VALUE. */
export function validateMinFree(name: string, value: unknown): MinFree {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value
  if (typeof value === 'string' && PERCENT.test(value)) return `${Number(value.slice(0, -1))}%`
  throw poolError('ERR_INVALID_ARG_VALUE', `${name} must be a number of bytes (a safe non-negative integer) or a percentage of the filesystem such as '10%'`)
}

/** The floor in bytes on a filesystem of `fsSize` bytes. */
export function floorBytes(minFree: MinFree, fsSize: number): number {
  if (typeof minFree === 'number') return minFree
  return Math.ceil((fsSize * Number(minFree.slice(0, -1))) / 100)
}

/** An ERR_LOW_SPACE error carries the figures it names (bytes). */
export interface LowSpaceFigures {
  /** Bytes available on the filesystem (statvfs f_bavail). */
  free: number
  /** The floor minFree sets, in bytes. */
  floor: number
  /** What the operation could write. */
  need: number
}

/**
 * Refuse (ERR_LOW_SPACE) when the bytes `need` the operation `what` (e.g.
 * 'clone 3 volumes') could write would leave the filesystem below the pool's
 * floor. Call it before anything changes on disk; once per batch. `need` may be
 * a function: it is only evaluated (and the filesystem only asked) when a floor is set.
 */
export async function guardSpace(ctx: PoolContext, what: string, need: number | (() => Promise<number>)): Promise<void> {
  const minFree = ctx.pool.minFree
  if (minFree === 0 || minFree === '0%') return
  if (typeof need === 'function') need = await need()
  const st = await ctx.files.fsStats()
  const floor = floorBytes(minFree, st.size)
  if (st.available - need >= floor) return
  const figures: LowSpaceFigures = { free: st.available, floor, need }
  const err = poolError(
    'ERR_LOW_SPACE',
    `Cannot ${what} in pool ${ctx.pool.name}: ${humanSize(st.available)} is free and this could write ${humanSize(need)}, ` +
      `which would leave less than the pool's floor of ${humanSize(floor)} (minFree ${typeof minFree === 'number' ? humanSize(minFree) : minFree}). ` +
      'Nothing was changed. Free space first (remove volumes: usageIfRemoved, CLI `usage --if-removed VID...`, tells what that gives back), ' +
      "or lower the pool's minFree (setConfig, CLI `config --min-free`)",
    { path: ctx.dirPath },
  )
  for (const [k, v] of Object.entries(figures)) Object.defineProperty(err, k, { value: v, enumerable: true })
  throw err
}

/**
 * What making a copy of a file of `allocated` bytes costs: metadata with reflinks,
 * its data without (the sparse copy writes every allocated byte).
 */
export async function copyCost(ctx: PoolContext, allocated: () => Promise<number>): Promise<number> {
  return METADATA_BYTES + ((await ctx.files.reflinkCapable()) ? 0 : await allocated())
}
