// The footprint of one volume: every file it has in the pool (clean, dirty,
// precache, import, revisions, kept bases, and temp files counted with the image they
// stand in for), by kind, with allocated bytes and the FIEMAP shared/exclusive
// split. Without reflink a running volume holds its data twice (clean and
// dirty, docs/design.md §3: no precache is kept there); this is where that shows.
//
// A snapOnStart volume's own clean image is a hard link to its source's clean
// image (docs/design.md §3): it is counted with the source, not here.
import type { ImageKind, VolumePaths } from './names'
import type { PoolFiles } from './files'
import { filesAt } from './images'

/** Allocation of a set of files (FIEMAP shared/exclusive split as in `fileUsage`). */
export interface FilesUsage {
  /** How many files. */
  files: number
  /** Their allocated bytes. */
  allocated: number
  /** Bytes in extents shared with other files (reflinks); counted in each file that shares them. */
  shared: number
  /** Bytes in extents that only one file has. */
  exclusive: number
}

/** The kinds of file a volume has; temp files count as the image they stand in for. */
export type FootprintKind = 'clean' | 'dirty' | 'precache' | 'import' | 'revisions' | 'bases'

/** Per-kind usage of every file of a volume, and their sum. */
export interface VolumeFootprint {
  /** Usage of each kind of file (`files: 0` when the volume has none). */
  byKind: Record<FootprintKind, FilesUsage>
  /** The sum over every file of the volume. */
  total: FilesUsage
}

const KIND_OF: Record<ImageKind, FootprintKind> = {
  clean: 'clean',
  dirty: 'dirty',
  precache: 'precache',
  import: 'import',
  revision: 'revisions',
  base: 'bases',
  // A cut receive kept for a resume: received data that is not yet the volume's.
  partial: 'import',
}

export function emptyUsage(): FilesUsage {
  return { files: 0, allocated: 0, shared: 0, exclusive: 0 }
}

export function addUsage(into: FilesUsage, u: FilesUsage): void {
  into.files += u.files
  into.allocated += u.allocated
  into.shared += u.shared
  into.exclusive += u.exclusive
}

export async function volumeFootprint(files: PoolFiles, p: VolumePaths, opts: { sourceOwnsClean: boolean }): Promise<VolumeFootprint> {
  const byKind = Object.fromEntries(Object.values(KIND_OF).map((k) => [k, emptyUsage()])) as Record<FootprintKind, FilesUsage>
  const total = emptyUsage()
  for (const { path, parsed } of await filesAt(files, p)) {
    const kind = KIND_OF[parsed.kind]
    if (kind === 'clean' && !parsed.temp && opts.sourceOwnsClean) continue
    if (!(await files.image(path))) continue // gone meanwhile
    const u = await files.usage(path)
    const one = { files: 1, allocated: u.allocated, shared: u.shared, exclusive: u.exclusive }
    addUsage(byKind[kind], one)
    addUsage(total, one)
  }
  return { byKind, total }
}
