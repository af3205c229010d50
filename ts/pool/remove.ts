// Removing many volumes in one batch (docs/design.md §7): `pool.removeVolumes`.
//
// All or nothing up to the commit point. Every refusal is decided before it and
// changes nothing: an unknown volume, a running one (its dirty image exists)
// without `force`, a volume with dependents outside the batch without
// `recursive` (ERR_HAS_DEPENDENTS naming them), an abort. The native task
// (crates/core/src/batch.rs `remove_volumes`) takes every lock, checks the
// running volumes again under them, then makes an intent naming the vids durable:
// that is the commit point. From there the records go, then every file, the
// empty VM directories, one barrier. A crash after the commit point leaves the
// intent, and recovery (recovery.ts) finishes the removal of each vid it names,
// so each volume is whole or gone.
import { randomBytes } from 'node:crypto'
import { abortError } from '../errors'
import { optional, validateBoolean, validateOptions } from '../validate'
import { IMAGE_SUFFIX, lockFileName, removalFileName, volumePaths } from '../store/names'
import { SELF_OWNER } from '../store/owner'
import { poolError, hasCode } from '../store/fail'
import { dependentsIndex, outsideDependents, withDependents } from './dependents'
import { BATCH_KEYS, batchOptions, checkList, layout, metaDirs, phaseTimes, poolFailure } from './batch'
import type { RegistryContext } from './context'
import type { ReflinkVolume } from '../volume/volume'
import type { RemoveVolumesOptions } from '../store/types'


/** What `pool.removeVolumes` did. */
export interface RemoveReport {
  /** Every vid removed, sorted: those given and, with `recursive`, their dependents. */
  removed: string[]
  /** Wall time of each phase of the native batch, ms (lock, check, intent, unlink, barrier, release). */
  phases: Record<string, number>
}

const REMOVE_KEYS = [...BATCH_KEYS, 'force', 'recursive'] as const

/** How many vids a refusal names before it says "and N more". */
const NAMED = 10

function named(vids: readonly string[]): string {
  return vids.length <= NAMED ? vids.join(', ') : `${vids.slice(0, NAMED).join(', ')} and ${vids.length - NAMED} more`
}

/** ERR_HAS_DEPENDENTS naming the volumes that would break; `dependents` lists them all. */
function dependentsError(outside: Map<string, string[]>): Error {
  const sources = [...outside.keys()]
  const deps = [...new Set([...outside.values()].flat())].sort()
  const one = deps.length === 1
  const err = poolError(
    'ERR_HAS_DEPENDENTS',
    `Cannot remove ${named(sources)}: ${named(deps)} ${one ? 'starts' : 'start'} from ${sources.length === 1 ? 'it' : 'them'}. Remove ${one ? 'it' : 'them'} first, or together (recursive, CLI --recursive). Nothing was removed`,
    { vid: sources[0] },
  )
  Object.defineProperty(err, 'dependents', { value: deps, enumerable: true })
  return err
}

/**
 * Remove `list` (volumes or vids of this pool) and, with `recursive`, their
 * dependents, in one batch. See RemoveVolumesOptions.
 */
export async function removeVolumes(ctx: RegistryContext, list: readonly (ReflinkVolume | string)[], options?: RemoveVolumesOptions): Promise<RemoveReport> {
  const o = validateOptions('options', options, REMOVE_KEYS)
  const force = optional<boolean>('options.force', o.force, validateBoolean) ?? false
  const recursive = optional<boolean>('options.recursive', o.recursive, validateBoolean) ?? false
  const b = batchOptions(o)
  checkList(list, 'volumes')
  // The records as they are on disk now: a dependent made by another process counts.
  const all = await ctx.pool.listVolumes()
  const byVid = new Map(all.map((v) => [v.vid, v]))
  const given = list.map((v) => {
    const vid = typeof v === 'string' ? v : v?.vid
    if (typeof v !== 'string' && (typeof v !== 'object' || v === null || v.pool !== ctx.pool)) {
      throw poolError('ERR_INVALID_ARG_VALUE', 'expected volumes of this pool (or their vids)')
    }
    if (!byVid.has(vid)) {
      ctx.pool.getVolume(vid) // ERR_INVALID_VID for a malformed vid
      throw poolError('ERR_UNKNOWN_VOLUME', `No volume ${vid} in pool ${ctx.pool.name}`, { vid })
    }
    return vid
  })
  if (new Set(given).size !== given.length) throw poolError('ERR_INVALID_ARG_VALUE', 'a volume is given twice')
  // A broken record refuses every call on its volume (ERR_VOLUME_BROKEN, thrown by its own check).
  for (const vid of given) if (byVid.get(vid)!.broken !== null) await byVid.get(vid)!.isRunning()
  const index = dependentsIndex(all)
  const vids = recursive ? withDependents(index, given) : new Set(given)
  const outside = outsideDependents(index, vids)
  if (outside.size) throw dependentsError(outside)
  if (vids.size === 0) return { removed: [], phases: {} }
  // Sorted: two batches in different processes take their flocks in the same order.
  const order = [...vids].sort()
  const dirs = metaDirs(ctx)
  const intent = removalFileName(`${process.pid}-${randomBytes(6).toString('hex')}`)
  return ctx.runBatch(order.map(lockFileName), async () => {
    // The images of each volume (every revision, temp file and kept base too) are found by the
    // native task, listing its VM directory under the locks; its side files (store.sideFiles) are named.
    const items = order.map((vid) => {
      const l = layout(vid)
      const files = ctx.store.sideFiles(vid).map((path) => ctx.files.rel(path))
      return { dir: l.dir, base: l.base, files, busy: force ? undefined : l.base + IMAGE_SUFFIX.dirty, record: l.record, lock: l.lock }
    })
    // Queued behind other calls on these volumes: an abort meanwhile still counts.
    if (b.signal?.aborted) throw abortError(b.signal)
    const unmark = ctx.markLive(intent)
    try {
      const out = await ctx.files.removeVolumes(
        {
          records: dirs.records,
          locks: dirs.locks,
          items,
          intent: `${dirs.sessions}/${intent}`,
          intentData: [SELF_OWNER, ...order].join('\n') + '\n',
          barrier: b.barrier,
        },
        { what: 'removeVolumes', signal: b.signal, onProgress: b.onProgress },
      )
      for (const vid of order) ctx.forget(vid)
      return { removed: order, phases: phaseTimes(out.phases) }
    } catch (e) {
      const path = (e as { path?: string }).path
      const vid = order.find((v) => path === volumePaths(ctx.dirPath, v).dirty)
      if (vid !== undefined && hasCode(e, 'EBUSY')) {
        throw poolError('ERR_VOLUME_DIRTY', `Cannot remove ${vid}: it is running or was not cleanly stopped (${path} exists); stop it first, or pass force (--force) to remove it with its running image. Nothing was removed`, { vid, path })
      }
      throw poolFailure(ctx, e, order)
    } finally {
      unmark()
    }
  })
}
