// Crash recovery at open (SPEC §3.1). Every operation that leaves temp files
// or a half-written import holds a lock file (or, for an import session
// between importData and importDataEnd, an owner marker) naming its process.
// So the volumes to recover are exactly those whose lock or marker belongs to
// a dead process: recovery never scans the whole pool (open stays fast with
// 10 000 volumes) and never touches the temp files of a live process that has
// the same pool open.
// For each such volume, under its lock: remove its `*~*` temp images and
// record temps, and its import unless a live import session owns it. A dirty
// image is kept: the volume then reports isDirty() and stop() commits it.
import { join } from 'node:path'
import { volumePaths, parseImageName, parseMetaName, lockFileName, importMarkFileName, recordFileName, TEMP_MARK } from './names'
import { markerStale } from './lock'
import type { PoolContext } from './context'

export interface RecoveryReport {
  /** Vids whose crashed operation was cleaned up. */
  recovered: string[]
  /** Files removed. */
  removed: string[]
}

export async function recover(ctx: PoolContext): Promise<RecoveryReport> {
  const { locks, volumes } = ctx.store.paths
  const candidates = new Set<string>()
  const lockEntries = await ctx.files.list(locks)
  for (const ent of lockEntries) {
    const parsed = parseMetaName(ent.name)
    if (!parsed || parsed.kind === 'record') continue
    if (await markerStale(join(locks, ent.name))) candidates.add(parsed.vid)
  }
  const report: RecoveryReport = { recovered: [], removed: [] }
  if (candidates.size === 0) return report
  const recordTemps = (await ctx.files.list(volumes)).map((e) => e.name).filter((n) => n.includes(TEMP_MARK))
  for (const vid of candidates) {
    await ctx.run(lockFileName(vid), async () => {
      report.removed.push(...(await cleanVolume(ctx, vid, recordTemps)))
    })
    report.recovered.push(vid)
  }
  return report
}

async function cleanVolume(ctx: PoolContext, vid: string, recordTemps: string[]): Promise<string[]> {
  const removed: string[] = []
  const rm = async (path: string) => {
    if (await ctx.files.remove(path)) removed.push(path)
  }
  const marker = join(ctx.store.paths.locks, importMarkFileName(vid))
  const importAbandoned = (await ctx.files.readText(marker)) === null || (await markerStale(marker))
  const p = volumePaths(ctx.dirPath, vid)
  if (await ctx.files.checkDir(p.dir)) {
    for (const ent of await ctx.files.list(p.dir)) {
      const parsed = parseImageName(ent.name)
      if (!parsed || parsed.base !== p.base) continue
      if (parsed.temp || (parsed.kind === 'import' && importAbandoned)) await rm(join(p.dir, ent.name))
    }
  }
  if (importAbandoned) await rm(marker)
  const prefix = recordFileName(vid) + TEMP_MARK
  for (const name of recordTemps) if (name.startsWith(prefix)) await rm(join(ctx.store.paths.volumes, name))
  return removed
}
