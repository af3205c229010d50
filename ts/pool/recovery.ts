// Crash recovery at open (docs/design.md §4): remove temp files (`*~*`),
// half-written imports and the files of unfinished creates; keep dirty images
// (the volume then reports isDirty() and stop() commits it).
//
// Finding the leftovers without scanning every VM directory on every open:
// - Each open pool instance has a session file in `.reflink-pool/sessions/`,
//   written durably before it changes anything and removed by close(). A
//   session whose owner is gone (process died, power cut, or a pool object of
//   this process that is no longer open) means something may have crashed:
//   then, and only then, open scans the whole pool for leftovers.
// - Without a dead session, only volumes whose lock file is left with its
//   flock free (a holder died mid-operation: live holders unlink it on
//   release) or whose import marker belongs to a dead process are looked at.
// - A batch (docs/design.md §7) leaves an intent file `<id>.batch` in the
//   sessions directory naming the vids it makes; one whose owner is dead is
//   read: every vid of it that has no record lost its batch, so its images
//   (made by that batch, which refused existing ones) are removed.
// - A remove batch leaves an intent file `<id>.remove` naming the vids it
//   removes, made durable at its commit point: every vid of a dead one is
//   removed whole (record, files, empty VM directory), finishing the batch.
// Each volume is cleaned under its own lock, so the temp files of a live
// process's operation are never touched (we wait for it to finish), and an
// import whose importData session is still alive (its marker's owner lives)
// is kept.
// - A create first writes its record marked `creating`, then makes the files,
//   then rewrites the record without the mark. A marked record seen under the
//   volume's lock is therefore an unfinished create: its files (which did not
//   exist before it, or the create would have been refused) and the record are
//   removed. Open looks at every marked record it loaded.
import { join } from 'node:path'
import {
  volumePaths,
  parseImageName,
  parseMetaName,
  lockFileName,
  recordFileName,
  isSessionName,
  isBatchName,
  isRemovalName,
  TEMP_MARK,
} from '../store/names'
import { lockAbandoned } from '../store/lock'
import { markerStale, ownerAlive, SELF_OWNER } from '../store/owner'
import { hasCode } from '../store/fail'
import { isValidVid, VID_PREFIXES } from '../store/vid'
import { isBroken } from '../store/records'
import { volumeFiles } from '../store/images'
import { VolumePartial } from '../volume/resume'
import type { PoolContext } from '../store/context'

/** What recovery did when a pool was opened (`pool.recovery`). */
export interface RecoveryReport {
  /** Whether a dead session made open scan the whole pool. */
  fullScan: boolean
  /** Vids whose leftovers were looked at under their lock. */
  recovered: string[]
  /** Files removed. */
  removed: string[]
}

/**
 * Remove the files and record of `vid` when its record is an unfinished create
 * (call under the volume's lock); returns the paths removed.
 */
export async function undoUnfinishedCreate(ctx: PoolContext, vid: string): Promise<string[]> {
  const rec = await ctx.store.readVolume(vid)
  if (!rec || isBroken(rec) || !rec.creating) return []
  const removed: string[] = []
  for (const f of await volumeFiles(ctx, vid)) if (await ctx.files.remove(f.path)) removed.push(f.path)
  await ctx.files.removeEmptyDir(volumePaths(ctx.dirPath, vid).dir)
  await ctx.store.removeVolume(vid)
  removed.push(ctx.store.recordPath(vid))
  return removed
}

/**
 * Recover after a crash. `unfinishedCreates`: vids whose record open found
 * marked `creating` (each is checked again under its lock).
 */
export async function recover(ctx: PoolContext, isOpenSession: (fileName: string) => boolean, unfinishedCreates: readonly string[] = []): Promise<RecoveryReport> {
  const { locks, volumes, sessions, meta, states } = ctx.store.paths
  const deadSessions: string[] = []
  for (const ent of await ctx.files.list(sessions)) {
    if (!isSessionName(ent.name) || isOpenSession(ent.name)) continue
    const held = await ctx.files.readOwner(join(sessions, ent.name))
    // A session of this process that is not open any more was never closed: as dead as another process's.
    if (held && (held.owner.trim() === SELF_OWNER || !ownerAlive(held.owner, held.mtimeMs))) deadSessions.push(join(sessions, ent.name))
  }
  const report: RecoveryReport = { fullScan: deadSessions.length > 0, recovered: [], removed: [] }
  const candidates = new Set<string>(unfinishedCreates)
  /** Vids of dead batches: without a record, every image of theirs goes. */
  const unfinished = new Set<string>()
  /** Vids of dead remove batches past their commit point: removed whole. */
  const removing = new Set<string>()
  const deadBatches: string[] = []
  for (const ent of await ctx.files.list(sessions)) {
    const into = isBatchName(ent.name) ? unfinished : isRemovalName(ent.name) ? removing : null
    if (!into || isOpenSession(ent.name)) continue
    const path = join(sessions, ent.name)
    const held = await ctx.files.readOwner(path)
    if (!held) continue
    const [owner, ...vids] = held.owner.split('\n')
    if (owner.trim() !== SELF_OWNER && ownerAlive(owner, held.mtimeMs)) continue
    for (const vid of vids) {
      if (!isValidVid(vid)) continue
      into.add(vid)
      candidates.add(vid)
    }
    deadBatches.push(path)
  }
  for (const ent of await ctx.files.list(locks)) {
    const parsed = parseMetaName(ent.name)
    if (!parsed || parsed.kind === 'record' || !isValidVid(parsed.vid)) continue
    const path = join(locks, ent.name)
    if (await (parsed.kind === 'lock' ? lockAbandonedOrUnsafe(ctx, path) : markerStale(ctx.files, path))) candidates.add(parsed.vid)
  }
  const recordTemps = (await ctx.files.list(volumes)).map((e) => e.name).filter((n) => n.includes(TEMP_MARK))
  if (report.fullScan) {
    for (const vid of await scanLeftovers(ctx)) candidates.add(vid)
    for (const name of recordTemps) {
      const vid = parseMetaName(name.slice(0, name.indexOf(TEMP_MARK)))?.vid
      if (vid && isValidVid(vid)) candidates.add(vid)
    }
    // Temps of the pool config, of batch intents, of state books (docs/design.md §8) and of stale locks broken by older versions belong to no volume.
    for (const dir of [meta, locks, sessions, states]) {
      for (const ent of await ctx.files.list(dir)) {
        if (ent.isFile() && ent.name.includes(TEMP_MARK) && (await ctx.files.remove(join(dir, ent.name)))) report.removed.push(join(dir, ent.name))
      }
    }
  }
  for (const vid of candidates) {
    try {
      await ctx.run(lockFileName(vid), async () => {
        const removed = removing.has(vid) ? await finishRemoval(ctx, vid) : []
        report.removed.push(...removed, ...(await cleanVolume(ctx, vid, recordTemps, unfinished.has(vid))))
      })
    } catch (e) {
      // A planted symlink in that volume's path: leave it to the volume's own calls, which refuse it.
      if (hasCode(e, 'ERR_UNSAFE_PATH')) continue
      throw e
    }
    report.recovered.push(vid)
  }
  for (const s of [...deadBatches, ...deadSessions]) await ctx.files.remove(s)
  return report
}

/** `lockAbandoned`, with a planted symlink counted as a candidate: its volume's cleanup then skips it (below). */
async function lockAbandonedOrUnsafe(ctx: PoolContext, path: string): Promise<boolean> {
  try {
    return await lockAbandoned(ctx.files, path)
  } catch (e) {
    if (hasCode(e, 'ERR_UNSAFE_PATH')) return true
    throw e
  }
}

/** Vids that have a temp or import file in their VM directory (real directories only; symlinks are skipped). */
async function scanLeftovers(ctx: PoolContext): Promise<string[]> {
  const found = new Set<string>()
  for (const prefix of VID_PREFIXES) {
    const prefixDir = join(ctx.dirPath, prefix)
    if (!(await ctx.files.checkDir(prefixDir))) continue
    const vms = (await ctx.files.list(prefixDir)).filter((e) => e.isDirectory())
    // A few directories at a time: enough to overlap the readdirs without flooding the threadpool.
    for (let i = 0; i < vms.length; i += 16) {
      await Promise.all(
        vms.slice(i, i + 16).map(async (vm) => {
          for (const ent of await ctx.files.list(join(prefixDir, vm.name))) {
            const parsed = parseImageName(ent.name)
            if (!parsed || !(parsed.temp || parsed.kind === 'import' || parsed.kind === 'partial')) continue
            const vid = `${prefix}/${vm.name}/${parsed.base}`
            if (isValidVid(vid)) found.add(vid)
          }
        }),
      )
    }
  }
  return [...found]
}

/** Finish a remove batch's removal of `vid` (under its lock): its record first, then every file of it, then its VM directory when empty. */
export async function finishRemoval(ctx: PoolContext, vid: string): Promise<string[]> {
  const removed: string[] = []
  const rm = async (path: string) => {
    if (await ctx.files.remove(path)) removed.push(path)
  }
  await rm(ctx.store.recordPath(vid))
  for (const f of await volumeFiles(ctx, vid)) if (f.parsed.temp || !f.parsed.outOfRange) await rm(f.path)
  for (const path of ctx.store.sideFiles(vid)) await rm(path)
  await ctx.files.removeEmptyDir(volumePaths(ctx.dirPath, vid).dir)
  ctx.forget(vid)
  return removed
}

async function cleanVolume(ctx: PoolContext, vid: string, recordTemps: string[], unfinishedBatch: boolean): Promise<string[]> {
  const removed: string[] = await undoUnfinishedCreate(ctx, vid)
  const rm = async (path: string) => {
    if (await ctx.files.remove(path)) removed.push(path)
  }
  const marker = ctx.store.importMarkPath(vid)
  const importAbandoned = (await ctx.files.readText(marker)) === null || (await markerStale(ctx.files, marker))
  // A dead batch's vid with no record: the batch made its images (it refuses existing ones).
  const orphan = unfinishedBatch && (await ctx.store.readVolume(vid)) === null
  // A partial receive stays while its record names it (docs/design.md §8.9); a dropped one goes.
  const partial = await new VolumePartial(ctx.files, ctx.dirPath, vid, volumePaths(ctx.dirPath, vid)).read()
  for (const f of await volumeFiles(ctx, vid)) {
    // A batch makes no revisions or kept bases: one of an orphan vid was there before it, and stays.
    const batchMade = orphan && f.parsed.kind !== 'revision' && f.parsed.kind !== 'base' && f.parsed.kind !== 'partial'
    const dropped = f.parsed.kind === 'partial' && !f.parsed.temp && f.path !== partial?.path
    if (batchMade || dropped || f.parsed.temp || (f.parsed.kind === 'import' && importAbandoned)) await rm(f.path)
  }
  if (orphan) await ctx.files.removeEmptyDir(volumePaths(ctx.dirPath, vid).dir)
  if (importAbandoned) await rm(marker)
  const prefix = recordFileName(vid) + TEMP_MARK
  for (const name of recordTemps) if (name.startsWith(prefix)) await rm(join(ctx.store.paths.volumes, name))
  return removed
}
