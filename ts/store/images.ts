// The files of one volume in its VM directory: every name that parses as one
// of the vid's image names (clean, dirty, precache, import, revisions, in or
// out of range, kept bases, and their temp files). Used to refuse a create over files the
// pool did not make, to undo an unfinished create, to remove a volume, and to
// measure its footprint.
import { join } from 'node:path'
import { volumePaths, parseImageName, type ParsedImageName, type VolumePaths } from './names'
import type { PoolContext } from './context'
import type { PoolFiles } from './files'

export interface VolumeFile {
  path: string
  parsed: ParsedImageName
}

/** The files of `vid`, by name (a VM directory that is a planted symlink is ERR_UNSAFE_PATH). */
export function volumeFiles(ctx: PoolContext, vid: string): Promise<VolumeFile[]> {
  return filesAt(ctx.files, volumePaths(ctx.dirPath, vid))
}

/** The kept bases of the volume at `p` (docs/design.md §8.6): their state ids and paths (temp files excluded). */
export async function keptBaseFiles(files: PoolFiles, p: VolumePaths): Promise<{ id: string; path: string }[]> {
  return (await filesAt(files, p)).filter((f) => f.parsed.kind === 'base' && !f.parsed.temp).map((f) => ({ id: f.parsed.id!, path: f.path }))
}

/** The files named by `p` (its directory and base name); see volumeFiles. */
export async function filesAt(files: PoolFiles, p: VolumePaths): Promise<VolumeFile[]> {
  if (!(await files.checkDir(p.dir))) return []
  return pick(p, (await files.list(p.dir)).map((e) => e.name))
}

/** The entries of `names` (in `p.dir`) that are files of `p`'s volume, sorted by path. */
function pick(p: VolumePaths, names: readonly string[]): VolumeFile[] {
  const out: VolumeFile[] = []
  for (const name of names) {
    const parsed = parseImageName(name)
    if (parsed && parsed.base === p.base) out.push({ path: join(p.dir, name), parsed })
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}
