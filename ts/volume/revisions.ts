// The revisions of a volume (docs/design.md §3): earlier clean images, kept without
// moving data where possible (files.keepImage), named `<name>.img.<N>@<timestamp>Z`, added
// by each commit and revert, pruned to revisionsToKeep, and reverted to. Revision-shaped
// names with a number out of range were not made by the pool: listed (strayRevisions), else left alone.
import { join } from 'node:path'
import { MAX_REVISION, revisionFileName, revisionTimestamp } from '../store/names'
import { poolError } from '../store/fail'
import { throwIfAborted } from '../errors'
import { optional, validateOptions, validateSignal } from '../validate'
import { volumeFiles } from '../store/images'
import { replaceClean } from './precache'
import type { StateChange } from '../store/states'
import type { AbortOptions } from '../store/types'
import type { VolumeAccess } from './access'

export interface Revision {
  rev: number
  timestamp: string
  path: string
}

type ListAccess = Pick<VolumeAccess, 'ctx' | 'vid'>

/**
 * Revisions of the volume, oldest first. A revision name that is not a
 * regular file is refused. Revision-shaped names with a number above
 * MAX_REVISION are left out (and listed by strayRevisions), so they never
 * hide the others or stop pruning.
 */
export async function revisionList(v: ListAccess): Promise<Revision[]> {
  const out: Revision[] = []
  for (const { path, parsed } of await volumeFiles(v.ctx, v.vid)) {
    if (parsed.temp || parsed.kind !== 'revision' || parsed.rev === undefined) continue
    out.push({ rev: parsed.rev, timestamp: parsed.timestamp!, path })
  }
  await v.ctx.files.images(out.map((r) => r.path)) // the regular-file check, all at once
  return out.sort((a, b) => a.rev - b.rev)
}

/** `{ [rev]: 'YYYY-MM-DDTHH:MM:SSZ' }`, ascending by revision number. */
export async function revisionTimes(v: ListAccess): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const r of await revisionList(v)) out[r.rev] = `${r.timestamp}Z`
  return out
}

/** Files named as revisions of the volume whose number is out of range: not the pool's. */
export async function strayRevisions(v: ListAccess): Promise<string[]> {
  return (await volumeFiles(v.ctx, v.vid)).filter((f) => !f.parsed.temp && f.parsed.outOfRange).map((f) => f.path)
}

/**
 * Keep the current clean image as revision max+1 (a hardlink, else a clone; files.keepImage), stamped with its mtime (UTC).
 * The revision holds the clean image's bytes, so it keeps its identity; a received image about to be
 * committed (`received`) is recorded in the same write of the state book (docs/design.md §8.1).
 */
export async function addRevision(v: VolumeAccess, signal?: AbortSignal, received?: StateChange['record']): Promise<void> {
  const p = v.paths
  const clean = v.record.revisionsToKeep > 0 ? await v.ctx.files.image(p.clean) : null
  let revision: string | null = null
  if (clean) {
    const revs = await revisionList(v)
    const next = (revs.at(-1)?.rev ?? 0) + 1
    if (next > MAX_REVISION) {
      throw poolError('ERR_OUT_OF_RANGE', `Volume ${v.vid} has used every revision number up to ${MAX_REVISION}; remove or renumber its revisions`, { vid: v.vid })
    }
    revision = join(p.dir, revisionFileName(p.base, next, revisionTimestamp(clean.mtimeMs)))
    await v.ctx.files.keepImage(p.clean, revision, { signal })
  }
  await v.states.update({ carry: revision === null ? null : { from: p.clean, to: revision }, record: received })
}

/** Delete all but the newest `keep` revisions (keep <= 0: all). */
export async function pruneRevisions(v: ListAccess, keep: number): Promise<void> {
  const revs = await revisionList(v)
  for (const r of revs.slice(0, Math.max(0, revs.length - Math.max(0, keep)))) {
    await v.ctx.files.remove(r.path)
  }
}

/** Replace the clean image with revision `rev` (default newest); the current one becomes a new revision. */
export async function revert(v: VolumeAccess, rev?: number | string, options?: AbortOptions): Promise<void> {
  const signal = optional<AbortSignal>('options.signal', validateOptions('options', options, ['signal']).signal, validateSignal)
  throwIfAborted(signal)
  await v.locked(async () => {
    const p = v.paths
    const { dirty } = await v.guard()
    if (v.record.saveOnStop && dirty) {
      throw poolError('ERR_VOLUME_DIRTY', `Cannot revert ${v.vid}: it is not cleanly stopped (${p.dirty} exists)`, {
        vid: v.vid,
        path: p.dirty,
      })
    }
    const revs = await revisionList(v)
    const wanted = rev === undefined ? undefined : String(rev)
    const chosen = wanted === undefined ? revs.at(-1) : revs.find((r) => String(r.rev) === wanted)
    if (!chosen) {
      throw poolError(
        'ERR_REVISION_NOT_FOUND',
        wanted === undefined ? `Volume ${v.vid} has no revisions` : `Volume ${v.vid} has no revision ${JSON.stringify(rev)}`,
        { vid: v.vid },
      )
    }
    throwIfAborted(signal)
    await addRevision(v, signal) // the signal stops the copy; past it, the revert completes
    await replaceClean(v, () => v.ctx.files.rename(chosen.path, p.clean))
  })
}
