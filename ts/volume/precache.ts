// The precache of an origin volume (docs/design.md §3): a clone of the clean image,
// renamed to dirty at start so a start costs no copy. It is made after every change
// of the clean image and only as a clone (none where the filesystem cannot clone).
import { hasCode } from '../store/fail'
import type { FileInfo } from '../store/files'
import type { VolumeAccess } from './access'

type PrecacheAccess = Pick<VolumeAccess, 'ctx' | 'paths' | 'usesPrecache'>

/** A clone of the clean image to start from; none where the filesystem cannot clone (a full copy would double each commit to save one at start). */
export async function refreshPrecache(v: PrecacheAccess): Promise<void> {
  await v.ctx.files.cloneIfPossible(v.paths.clean, v.paths.precache, { copyMtime: true })
}

/** Put a new clean image in place with `write`; the precache of the old one goes first, a fresh one follows (unless not `refresh`). */
export async function replaceClean(v: PrecacheAccess, write: () => Promise<unknown>, refresh = true): Promise<void> {
  if (v.usesPrecache) await v.ctx.files.remove(v.paths.precache)
  await write()
  if (refresh && v.usesPrecache) await refreshPrecache(v)
}

/**
 * Rename a fresh precache to dirty; a stale one (size or mtime differs from
 * clean) is discarded, and so is one with more than one link (a hardlink
 * would make the VM write into another file).
 */
export async function startFromPrecache(v: PrecacheAccess, clean: FileInfo, signal?: AbortSignal): Promise<void> {
  const p = v.paths
  const files = v.ctx.files
  const pre = await files.image(p.precache)
  if (pre && pre.nlink === 1 && pre.size === clean.size && pre.mtimeNs === clean.mtimeNs) {
    try {
      await files.rename(p.precache, p.dirty)
      return
    } catch (e) {
      if (!hasCode(e, 'ENOENT')) throw e
    }
  } else if (pre) {
    await files.remove(p.precache)
  }
  await files.copy(p.clean, p.dirty, { signal })
}
