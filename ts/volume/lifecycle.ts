// The lifecycle of a volume (docs/design.md §3): create, start, stop (and the
// commit it makes), resize and remove, each by kind.
//
// Each step switches on the volume's kind and the way it starts (kind.ts);
// snapshots disabled (SD) is an origin with revisionsToKeep -1.
import { poolError, hasCode } from '../store/fail'
import { throwIfAborted } from '../errors'
import { flagOptions, optional, validateOptions, validateSignal, validateSize } from '../validate'
import { addRevision, pruneRevisions, revisionList } from './revisions'
import { refreshPrecache, replaceClean, startFromPrecache } from './precache'
import { startWay } from '../store/kind'
import type { StateChange } from '../store/states'
import { copyCost, METADATA_BYTES } from '../store/space'
import type { AbortOptions, ResizeOptions, StopOptions } from '../store/types'
import type { VolumeAccess } from './access'

/** Remove every image of the (registered) volume; S & !SoS: a sparse clean image of its size and its precache. */
export async function createFiles(v: VolumeAccess): Promise<void> {
  const p = v.paths
  await v.guard()
  await v.removeImages('all')
  if (v.kind === 'origin') {
    await v.ctx.files.ensureDir(p.dir)
    await v.ctx.files.createSparse(p.clean, v.record.size)
    if (v.usesPrecache) await refreshPrecache(v)
  }
}

/** The image the volume needs to start exists; else ERR_MISSING_IMAGE naming it. */
export async function verify(v: VolumeAccess): Promise<true> {
  v.usable()
  const p = v.paths
  const way = startWay(v.record)
  if (way === 'sparse') return true
  const at = way === 'source' ? v.sourcePaths() : p
  if ((await v.ctx.files.checkDir(at.dir)) && (await v.ctx.files.image(at.clean))) return true
  // Snapshots disabled and running (or crashed while running): the clean image lives on as dirty.
  if (way === 'rename' && (await v.ctx.files.image(p.dirty))) return true
  throw v.missing(at.clean)
}

/**
 * What a start could write (docs/design.md §7, space guard): origins and
 * snapshots clone an image (metadata with reflinks, its data without); a
 * volume with snapshots disabled renames; a volatile one makes a sparse image.
 */
export async function startCost(v: VolumeAccess): Promise<number> {
  v.usable()
  let image: string
  switch (startWay(v.record)) {
    case 'rename':
      return 0
    case 'sparse':
      return METADATA_BYTES
    case 'source':
      image = v.sourcePaths().clean
      break
    case 'precache':
      image = v.paths.clean
  }
  // A missing image costs nothing here: start itself refuses it (ERR_MISSING_IMAGE).
  return copyCost(v.ctx, async () => ((await v.ctx.files.image(image)) ? (await v.ctx.files.usage(image)).allocated : 0))
}

/** Prepare the dirty image and return its path. */
export async function start(v: VolumeAccess, options?: AbortOptions): Promise<string> {
  const signal = optional<AbortSignal>('options.signal', validateOptions('options', options, ['signal']).signal, validateSignal)
  throwIfAborted(signal)
  return v.locked(async () => {
    const p = v.paths
    const files = v.ctx.files
    const { clean, dirty } = await v.guard()
    throwIfAborted(signal)
    if (v.record.saveOnStop && dirty) {
      // Crash leftover of a running volume: reuse it unchanged (only if it has one link).
      await files.writableImage(p.dirty)
      await v.removeImages('incomplete')
      return p.dirty
    }
    switch (startWay(v.record)) {
      case 'source': {
        const src = v.sourcePaths()
        if (!(await files.checkDir(src.dir)) || !(await files.image(src.clean))) throw v.missing(src.clean)
        await v.removeImages('incomplete')
        await files.ensureDir(p.dir)
        await files.remove(p.clean)
        await linkSourceImage(v, src.clean, p.clean)
        try {
          await files.copy(p.clean, p.dirty, { signal })
        } catch (e) {
          await files.remove(p.clean) // a stopped snapshot has no image of its own
          throw e
        }
        break
      }
      case 'rename':
        if (!clean) throw v.missing(p.clean)
        await v.removeImages('incomplete')
        await pruneRevisions(v, 0)
        await files.remove(p.precache)
        await files.rename(p.clean, p.dirty)
        break
      case 'precache':
        if (!clean) throw v.missing(p.clean)
        await v.removeImages('incomplete')
        await startFromPrecache(v, clean, signal)
        break
      case 'sparse':
        await v.removeImages('incomplete')
        await files.ensureDir(p.dir)
        await files.createSparse(p.dirty, v.record.size)
        break
    }
    return p.dirty
  })
}

/**
 * Hardlink the source's clean image. The source is not locked (as in Qubes), so
 * its commit may rename a new image over the name while link(2) runs: the kernel
 * then refuses the old, now nameless inode with ENOENT. The name still exists
 * (holding the newer commit), so link again; ENOENT with no image is a real miss.
 */
async function linkSourceImage(v: VolumeAccess, srcClean: string, clean: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await v.ctx.files.hardlink(srcClean, clean)
    } catch (e) {
      if (!hasCode(e, 'ENOENT') || attempt >= 5) throw e
      if (!(await v.ctx.files.image(srcClean))) throw v.missing(srcClean)
    }
  }
}

/** Idempotent. S: commit the dirty image (or drop it with `discard`); others: remove their images. */
export async function stop(v: VolumeAccess, options?: StopOptions): Promise<void> {
  const { flag: discard, signal } = flagOptions(options, 'discard')
  throwIfAborted(signal)
  await v.locked(async () => {
    const p = v.paths
    const files = v.ctx.files
    const { dirty } = await v.guard()
    throwIfAborted(signal)
    if (v.record.saveOnStop) {
      if (!dirty) return
      if (discard) {
        if (v.snapshotsDisabled) {
          throw poolError(
            'ERR_INVALID_ARG_VALUE',
            `Cannot discard ${v.vid}: snapshots are disabled (revisionsToKeep -1), so the dirty image is its only copy`,
            { vid: v.vid, path: p.dirty },
          )
        }
        await files.remove(p.dirty)
        return
      }
      await files.writableImage(p.dirty) // a hardlinked dirty image is never committed
      await commit(v, p.dirty, { signal })
      return
    }
    if (v.kind === 'volatile' && dirty && dirty.size !== v.record.size) {
      // A volatile volume resized while running keeps its new size.
      await v.persist({ ...v.record, size: dirty.size })
    }
    await files.remove(p.dirty)
    await files.remove(p.clean)
  })
}

/** How a commit runs (see commit). */
export interface CommitOptions {
  /** Stops it only during the revision copy (nothing changed yet); after that it completes. */
  signal?: AbortSignal
  /** The sender's identity for a received image, written with the revision's carried one before the rename. */
  received?: StateChange['record']
  /**
   * Clone a fresh precache of the new clean image (default true: a stop). Imports and receives
   * make none: an imported image is mostly a template whose snapshots start from its clean
   * image, or a replica received into again before it starts; a start without a precache
   * clones the clean image (docs/design.md §3, §8.5).
   */
  precache?: boolean
}

/** Make `from` the new clean image: revision of the old one, prune, fsync, rename, refresh the precache. */
export async function commit(v: VolumeAccess, from: string, o: CommitOptions = {}): Promise<void> {
  const { signal, received } = o
  const p = v.paths
  const files = v.ctx.files
  if (v.snapshotsDisabled) {
    if (received) await v.states.update({ record: received })
    await files.fsyncFile(from)
    await files.rename(from, p.clean)
    return
  }
  // The new image's fsync is independent of the revision steps: both run at once, both end before the rename.
  const [kept, synced] = await Promise.allSettled([
    addRevision(v, signal, received).then(() => pruneRevisions(v, v.record.revisionsToKeep)),
    files.fsyncFile(from),
  ])
  for (const r of [kept, synced]) if (r.status === 'rejected') throw r.reason
  await replaceClean(v, () => files.rename(from, p.clean), o.precache ?? true)
}

/** Running: resize dirty in place (+ loop devices). Stopped S & !SoS: a new clean inode. Else nominal. */
export async function resize(v: VolumeAccess, size: number, options?: ResizeOptions): Promise<void> {
  validateSize('size', size)
  const { flag: allowShrink, signal } = flagOptions(options, 'allowShrink')
  throwIfAborted(signal)
  await v.locked(async () => {
    const p = v.paths
    const files = v.ctx.files
    if (!v.record.rw) throw poolError('ERR_VOLUME_READ_ONLY', `Cannot resize ${v.vid}: it is read-only`, { vid: v.vid })
    const { clean, dirty } = await v.guard()
    const current = dirty?.size ?? clean?.size ?? v.record.size
    if (size < current && !allowShrink) {
      throw poolError('ERR_SHRINK_REFUSED', `Refusing to shrink ${v.vid} from ${current} to ${size} bytes without { allowShrink: true }`, {
        vid: v.vid,
      })
    }
    throwIfAborted(signal)
    if (dirty) {
      await files.resize(p.dirty, size)
      await files.updateLoopDevSizes(p.dirty)
    } else if (v.kind === 'origin') {
      if (!clean) throw v.missing(p.clean)
      // Never truncate the committed inode in place: a reader of the exported path keeps the old data.
      try {
        await replaceClean(v, () => files.copy(p.clean, p.clean, { size, signal }))
      } catch (e) {
        // An aborted copy left the clean image as it was; put its precache back (no signal: it must finish).
        if (signal?.aborted && v.usesPrecache) await refreshPrecache(v)
        throw e
      }
    }
    if (v.record.size !== size) await v.persist({ ...v.record, size })
  })
}

/**
 * `remove`, only while nothing was committed into the volume since its clean image was
 * the inode `ino`: its clean image is still that inode and it has no revision. For a
 * receive that created the volume and failed (docs/design.md §8.5): another call may
 * have received into it meanwhile, and what it committed stays.
 */
export async function removeIfUntouched(v: VolumeAccess, ino: number): Promise<boolean> {
  return v.locked(async () => {
    const { clean, dirty } = await v.guard()
    if (clean?.ino !== ino || dirty || (await revisionList(v)).length) return false
    await removeLocked(v)
    return true
  })
}

async function removeLocked(v: VolumeAccess): Promise<void> {
  await v.removeImages('all')
  for (const path of v.ctx.store.sideFiles(v.vid)) await v.ctx.files.remove(path)
  await v.ctx.files.removeEmptyDir(v.paths.dir)
  await v.ctx.store.removeVolume(v.vid)
  v.ctx.forget(v.vid)
}
