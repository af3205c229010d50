// Batch operations on many volumes (docs/design.md §7): clone a template to
// many new volumes, create many volumes, start and stop many volumes. Each
// batch is ONE native task (crates/core/src/batch.rs) that takes the volumes'
// flock locks, makes every file as a temp file, makes them durable with one
// barrier, renames them into place, then writes the records, so a thousand
// volumes cost a few log forces instead of thousands.
//
// All-or-nothing per call: an error or an abort before the renames leaves
// nothing (the temp files are unlinked); after them the batch finishes. The
// signal is honoured from the call until that commit point, whenever it fires
// (an abort while the call awaited a lock or a stat included: runControlled).
// start and stop of many volumes commit with their native batch, or, when it
// has nothing to do, before their first per-volume call; the per-volume calls
// that follow run to the end without the signal, so an abort never leaves a
// batch half started or half stopped. A crash
// at any moment leaves each volume either fully made (its record is renamed in
// only once its images are durable) or absent (recovery.ts removes the images
// of a dead batch's vids that have no record).
//
// Kinds the batch path does not cover (start of volatile and snapshots-disabled
// volumes, stop of everything but snapshot volumes: commits, revisions, record
// updates) run through the per-volume calls, a few at a time.
import { randomBytes } from 'node:crypto'
import { abortError, throwIfAborted } from '../errors'
import { forEachBounded } from '../bounded'
import { copySlots } from '../limiter'
import { IMAGE_SUFFIX, batchFileName, lockFileName, recordFileName, volumePaths } from '../store/names'
import { recordText } from '../store/records'
import { SELF_OWNER } from '../store/owner'
import { poolError, hasCode } from '../store/fail'
import { optional, validateBoolean, validateFunction, validateOptions, validateRevisionsToKeep, validateSignal } from '../validate'
import { ReflinkVolume } from '../volume/volume'
import { volumeRecord } from './volume-options'
import { startWay, volumeKind } from '../store/kind'
import { copyCost, guardSpace, METADATA_BYTES } from '../store/space'
import type { PoolContext } from '../store/context'
import type { RegistryContext } from './context'
import type { BatchBarrier, BatchOptions, VolumeOptions, VolumeRecord } from '../store/types'

/** Options of `pool.cloneVolumes`. */
export interface CloneVolumesOptions extends BatchOptions {
  /**
   * 'copy' (default): save-on-stop volumes whose clean image is a reflink of the
   * template's committed image now. 'snapshot': snap-on-start volumes of the
   * template (only records; the reflink happens at each start).
   */
  mode?: 'copy' | 'snapshot'
  /** copy mode: also make each clone's dirty image in the same batch, so the volumes come back running (their first start done). */
  start?: boolean
  /** copy mode: also make a precache image per clone (a start is then a rename). Default false: see docs/design.md §7. */
  precache?: boolean
  /** Per-volume revisionsToKeep (default: inherit the pool's). */
  revisionsToKeep?: number
  /** Default true. */
  rw?: boolean
}

/** What a batch call did. */
export interface BatchReport {
  /** The volumes made (or started / stopped), in the order given. */
  volumes: ReflinkVolume[]
  /** Images made per copy method, e.g. `{ reflink: 1000 }`. */
  methods: Record<string, number>
  /** Wall time of each phase of the native batch, ms (lock, fill, barrier, rename, barrier2, records, ...). */
  phases: Record<string, number>
}

export const BATCH_KEYS = ['signal', 'onProgress', 'barrier'] as const
const CLONE_KEYS = [...BATCH_KEYS, 'mode', 'start', 'precache', 'revisionsToKeep', 'rw'] as const

export function batchOptions(o: Partial<BatchOptions>): Required<Pick<BatchOptions, 'barrier'>> & BatchOptions {
  const barrier = o.barrier ?? 'syncfs'
  if (barrier !== 'syncfs' && barrier !== 'fsync') throw poolError('ERR_INVALID_ARG_VALUE', `barrier must be 'syncfs' or 'fsync', got ${String(barrier)}`)
  const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
  const onProgress = optional<NonNullable<BatchOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction)
  if (signal?.aborted) throw abortError(signal)
  return { barrier, signal, onProgress }
}

/** A list argument: an array (an empty one makes an empty batch). */
export function checkList<T>(value: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(value)) throw poolError('ERR_INVALID_ARG_TYPE', `${what} must be an array`)
  return value
}

/** Names the native batch needs, relative to the pool directory (a valid vid is `prefix/vm/name`: plain string work). */
export function layout(vid: string) {
  const slash = vid.lastIndexOf('/')
  return {
    dir: vid.slice(0, slash),
    base: vid.slice(slash + 1),
    record: recordFileName(vid),
    lock: lockFileName(vid),
  }
}

export function metaDirs(ctx: PoolContext) {
  const { volumes, locks, sessions } = ctx.store.paths
  return { records: ctx.files.rel(volumes), locks: ctx.files.rel(locks), sessions: ctx.files.rel(sessions) }
}

function methodCounts(list: { method: string; count: number }[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of list) out[m.method] = (out[m.method] ?? 0) + m.count
  return out
}

export function phaseTimes(list: { name: string; ms: number }[]): Record<string, number> {
  return Object.fromEntries(list.map((p) => [p.name, p.ms]))
}

/** The native EEXIST / ENOENT of a batch, as the pool's typed errors (the vid is found from the path). */
export function poolFailure(ctx: RegistryContext, e: unknown, records: VolumeRecord[] | string[]): unknown {
  const path = (e as { path?: string }).path ?? ''
  const vids = records.map((r) => (typeof r === 'string' ? r : r.vid))
  const vid = vids.find((v) => {
    const p = volumePaths(ctx.dirPath, v)
    return path.endsWith(`/${recordFileName(v)}`) || [p.clean, p.dirty, p.precache].includes(path)
  })
  if (vid === undefined) return e
  if (hasCode(e, 'EEXIST')) return poolError('ERR_VOLUME_EXISTS', `Volume ${vid} already exists in pool ${ctx.pool.name} (${path})`, { vid, path })
  if (hasCode(e, 'ENOENT') && path.endsWith(recordFileName(vid))) {
    return poolError('ERR_UNKNOWN_VOLUME', `Volume ${vid} no longer exists in pool ${ctx.pool.name}`, { vid })
  }
  return e
}

interface MakeImage {
  name: string
  source?: number
  size?: number
  copyMtime?: boolean
}

/** Run one native make batch over `records` (each with its images), under the in-process queues of their locks. */
async function make(
  ctx: RegistryContext,
  records: VolumeRecord[],
  images: (rec: VolumeRecord) => MakeImage[],
  sources: string[],
  o: BatchOptions & { barrier: BatchBarrier },
): Promise<BatchReport> {
  const seen = new Set<string>()
  for (const r of records) {
    if (seen.has(r.vid)) throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${r.vid} is given twice`, { vid: r.vid })
    seen.add(r.vid)
    if (ctx.cached(r.vid)) throw poolError('ERR_VOLUME_EXISTS', `Volume ${r.vid} already exists in pool ${ctx.pool.name}`, { vid: r.vid })
  }
  if (records.length === 0) return { volumes: [], methods: {}, phases: {} }
  // Sorted: two batches in different processes take their flocks in the same order.
  const order = [...records].sort((a, b) => (a.vid < b.vid ? -1 : a.vid > b.vid ? 1 : 0))
  const dirs = metaDirs(ctx)
  const intent = batchFileName(`${process.pid}-${randomBytes(6).toString('hex')}`)
  const items = order.map((rec) => {
    const l = layout(rec.vid)
    return { dir: l.dir, images: images(rec), record: l.record, recordData: recordText(rec), lock: l.lock }
  })
  return ctx.runBatch(
    order.map((r) => lockFileName(r.vid)),
    async () => {
      const unmark = ctx.markLive(intent)
      try {
        // Without reflink the batch copies data: it takes a copy slot like copyFile.
        const out = await copySlots.run(
          () =>
            ctx.files.makeVolumes(
              {
                records: dirs.records,
                locks: dirs.locks,
                sources: sources.map((s) => ctx.files.rel(s)),
                items,
                intent: `${dirs.sessions}/${intent}`,
                intentData: [SELF_OWNER, ...order.map((r) => r.vid)].join('\n') + '\n',
                barrier: o.barrier,
                reflink: 'auto',
              },
              { what: 'batch', signal: o.signal, onProgress: o.onProgress },
            ),
          o.signal,
        )
        const volumes = records.map((rec) => ctx.remember(rec))
        return { volumes, methods: methodCounts(out.methods), phases: phaseTimes(out.phases) }
      } catch (e) {
        throw poolFailure(ctx, e, records)
      } finally {
        unmark()
      }
    },
  )
}

/**
 * Clone `template` (a save-on-stop volume, or its vid) to a new volume per
 * vid of `targets`, in one batch. See CloneVolumesOptions.
 */
export async function cloneVolumes(
  ctx: RegistryContext,
  template: ReflinkVolume | string,
  targets: readonly string[],
  options?: CloneVolumesOptions,
): Promise<BatchReport> {
  const o = validateOptions('options', options, CLONE_KEYS)
  const mode = o.mode ?? 'copy'
  if (mode !== 'copy' && mode !== 'snapshot') throw poolError('ERR_INVALID_ARG_VALUE', `mode must be 'copy' or 'snapshot', got ${String(mode)}`)
  const start = optional<boolean>('options.start', o.start, validateBoolean) ?? false
  const precache = optional<boolean>('options.precache', o.precache, validateBoolean) ?? false
  const rw = optional<boolean>('options.rw', o.rw, validateBoolean) ?? true
  const revisionsToKeep = optional<number>('options.revisionsToKeep', o.revisionsToKeep, validateRevisionsToKeep) ?? null
  if (mode === 'snapshot' && (start || precache)) throw poolError('ERR_INVALID_ARG_VALUE', 'start and precache are for mode "copy" (a snapshot volume is cloned at each start)')
  if (start && precache) throw poolError('ERR_INVALID_ARG_VALUE', 'start and precache exclude each other (a started clone has its dirty image already)')
  const b = batchOptions(o)
  const tpl = typeof template === 'string' ? ctx.pool.getVolume(template) : template
  if (!(tpl instanceof ReflinkVolume) || tpl.pool !== ctx.pool) throw poolError('ERR_INVALID_ARG_VALUE', 'cloneVolumes needs a template volume of this pool (or its vid)')
  checkList(targets, 'targets')
  const size = await tpl.size()
  const records = targets.map((vid) =>
    volumeRecord(ctx.pool, {
      vid,
      size,
      rw,
      kind: mode === 'copy' ? 'origin' : 'snapshot',
      ...(mode === 'snapshot' && { source: tpl.vid }),
      ...(revisionsToKeep !== null && { revisionsToKeep }),
    }),
  )
  const plural = `${records.length} volume${records.length === 1 ? '' : 's'}`
  if (mode === 'snapshot') {
    await guardSpace(ctx, `clone ${plural} of ${tpl.vid}`, records.length * METADATA_BYTES)
    return make(ctx, records, () => [], [], b)
  }
  const src = await tpl.export()
  try {
    // Each clone's images are reflinks (metadata) or, without reflink, copies of the template's data.
    const images = records.length * (start || precache ? 2 : 1)
    await guardSpace(ctx, `clone ${plural} of ${tpl.vid}`, async () => images * (await copyCost(ctx, async () => (await ctx.files.usage(src)).allocated)))
    return await make(
      ctx,
      records,
      (rec) => {
        const base = layout(rec.vid).base
        // A precache is used only while its size and mtime equal the clean image's: both get the template's mtime.
        const list: MakeImage[] = [{ name: base + IMAGE_SUFFIX.clean, source: 0, copyMtime: precache }]
        if (start) list.push({ name: base + IMAGE_SUFFIX.dirty, source: 0 })
        if (precache) list.push({ name: base + IMAGE_SUFFIX.precache, source: 0, copyMtime: true })
        return list
      },
      [src],
      b,
    )
  } finally {
    await tpl.exportEnd(src)
  }
}

/**
 * Create many volumes (the createVolume options of each) in one batch:
 * save-on-stop volumes get their sparse clean image (no precache: see
 * docs/design.md §7), the others only their record.
 */
export async function createVolumes(ctx: RegistryContext, configs: readonly unknown[], options?: BatchOptions): Promise<BatchReport> {
  const b = batchOptions(validateOptions('options', options, BATCH_KEYS))
  const records = checkList(configs, 'configs').map((c) => volumeRecord(ctx.pool, c as VolumeOptions))
  await guardSpace(ctx, `create ${records.length} volume${records.length === 1 ? '' : 's'}`, records.length * METADATA_BYTES)
  return make(
    ctx,
    records,
    (rec) => (volumeKind(rec) === 'origin' ? [{ name: layout(rec.vid).base + IMAGE_SUFFIX.clean, size: rec.size }] : []),
    [],
    b,
  )
}

/** Volumes (or vids) of this pool, each once. */
export function volumesOf(ctx: RegistryContext, list: readonly (ReflinkVolume | string)[]): ReflinkVolume[] {
  const out = checkList(list, 'volumes').map((v) => {
    const vol = typeof v === 'string' ? ctx.pool.getVolume(v) : v
    if (!(vol instanceof ReflinkVolume) || vol.pool !== ctx.pool) throw poolError('ERR_INVALID_ARG_VALUE', 'expected volumes of this pool (or their vids)')
    return vol
  })
  if (new Set(out.map((v) => v.vid)).size !== out.length) throw poolError('ERR_INVALID_ARG_VALUE', 'a volume is given twice')
  return out
}

/** Snapshot volumes take the batch path of stop; the other kinds their own calls. */
const isSnapshot = (v: ReflinkVolume) => v.kind === 'snapshot'

/**
 * The start batch covers snapshots (clone the source's clean image) and
 * origins that clone their own (not snapshots disabled: that start is a
 * rename; not origin-snapshots: a dirty image left by a crash is theirs to keep).
 */
const batchStarts = (v: ReflinkVolume) => isSnapshot(v) || startWay(v) === 'precache'

/** Per-volume calls for the kinds the batch does not cover, a few at a time, stopping at the first failure. */
async function eachVolume(vols: ReflinkVolume[], fn: (v: ReflinkVolume) => Promise<unknown>): Promise<void> {
  await forEachBounded(vols, PER_VOLUME_IN_FLIGHT, fn)
}

const PER_VOLUME_IN_FLIGHT = 8


/**
 * Start many volumes; resolves with their dirty image paths (in order).
 * Snapshot volumes (link the source's clean image, clone it) and save-on-stop
 * volumes (clone the clean image; a dirty image left by a crash is kept, a
 * precache is left for the next commit to replace) start in one batch; the
 * other kinds through start().
 */
export async function startVolumes(ctx: RegistryContext, list: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<string[]> {
  const b = batchOptions(validateOptions('options', options, BATCH_KEYS))
  const vols = volumesOf(ctx, list)
  await guardSpace(ctx, `start ${vols.length} volume${vols.length === 1 ? '' : 's'}`, () => startCost(vols))
  const batched = vols.filter(batchStarts).sort((a, c) => (a.vid < c.vid ? -1 : 1))
  const dirs = metaDirs(ctx)
  if (batched.length) {
    const items = batched.map((v) => {
      const l = layout(v.vid)
      const source = isSnapshot(v) ? ctx.files.rel(volumePaths(ctx.dirPath, v.source!).clean) : undefined
      return { dir: l.dir, clean: l.base + IMAGE_SUFFIX.clean, dirty: l.base + IMAGE_SUFFIX.dirty, source, record: l.record, lock: l.lock }
    })
    await ctx.runBatch(batched.map((v) => lockFileName(v.vid)), async () => {
      try {
        await copySlots.run(
          () =>
            ctx.files.startByClone(
              { records: dirs.records, locks: dirs.locks, items, barrier: b.barrier },
              { what: 'startVolumes', signal: b.signal, onProgress: b.onProgress },
            ),
          b.signal,
        )
      } catch (e) {
        const path = (e as { path?: string }).path
        const v = batched.find((s) => path === (isSnapshot(s) ? volumePaths(ctx.dirPath, s.source!).clean : volumePaths(ctx.dirPath, s.vid).clean))
        if (v && hasCode(e, 'ENOENT')) throw poolError('ERR_MISSING_IMAGE', `Missing image file ${path} for volume ${v.vid}`, { vid: v.vid, path })
        throw poolFailure(ctx, e, batched.map((s) => s.vid))
      }
    })
  } else throwIfAborted(b.signal)
  // Past the commit point: the other kinds start whatever the signal (the space was checked above).
  await eachVolume(vols.filter((v) => !batchStarts(v)), (v) => v.startChecked())
  return vols.map((v) => v.path)
}

/** What starting `vols` could write, summed (one space check per batch). */
async function startCost(vols: ReflinkVolume[]): Promise<number> {
  let sum = 0
  for (const v of vols) sum += await v.startCost()
  return sum
}

/** Stop many volumes: snapshot volumes in one batch (unlink dirty and clean, one barrier), others through stop(). */
export async function stopVolumes(ctx: RegistryContext, list: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<void> {
  const b = batchOptions(validateOptions('options', options, BATCH_KEYS))
  const vols = volumesOf(ctx, list)
  const snaps = vols.filter(isSnapshot).sort((a, c) => (a.vid < c.vid ? -1 : 1))
  const dirs = metaDirs(ctx)
  if (snaps.length) {
    const items = snaps.map((v) => {
      const l = layout(v.vid)
      return { dir: l.dir, names: [l.base + IMAGE_SUFFIX.dirty, l.base + IMAGE_SUFFIX.clean], record: l.record, lock: l.lock }
    })
    await ctx.runBatch(snaps.map((v) => lockFileName(v.vid)), async () => {
      try {
        await ctx.files.removeVolumeFiles(
          { records: dirs.records, locks: dirs.locks, items, barrier: b.barrier },
          { what: 'stopVolumes', signal: b.signal, onProgress: b.onProgress },
        )
      } catch (e) {
        throw poolFailure(ctx, e, snaps.map((s) => s.vid))
      }
    })
  } else throwIfAborted(b.signal)
  // Past the commit point: the other kinds stop (commit) whatever the signal.
  await eachVolume(vols.filter((v) => !isSnapshot(v)), (v) => v.stop())
}
