// What the modules of a volume (lifecycle, revisions, precache, data in and out)
// need of a ReflinkVolume: its record as last read and its private steps. An
// interface, so those modules do not import volume.ts at runtime (volume.ts calls them).
import type { PoolContext } from '../store/context'
import type { FileInfo } from '../store/files'
import type { VolumePaths } from '../store/names'
import type { VolumeStates } from '../store/states'
import type { VolumeRecord } from '../store/types'
import type { VolumeKind } from '../store/kind'

/** What guard() found of a volume's four single-file images (null: missing). */
export interface VolumeImages {
  clean: FileInfo | null
  dirty: FileInfo | null
  precache: FileInfo | null
  import: FileInfo | null
}

export interface VolumeAccess {
  readonly ctx: PoolContext
  readonly vid: string
  /** The record as last read (re-read by `locked`). */
  readonly record: VolumeRecord
  /** The record's kind (kind.ts). */
  readonly kind: VolumeKind
  readonly paths: VolumePaths
  /** Snapshots disabled: the clean image is renamed to dirty and back, no revisions, no precache. */
  readonly snapshotsDisabled: boolean
  readonly usesPrecache: boolean
  /** Identities of the committed states (docs/design.md §8.1). */
  readonly states: VolumeStates
  /** Write `rec` as the volume's record and adopt it. */
  persist(rec: VolumeRecord): Promise<void>
  /** Run `fn` under the volume's lock, after re-reading the record (another process may have changed it). */
  locked<T>(fn: () => Promise<T>): Promise<T>
  /** The planted-symlink check of every call; the stats of the four images. */
  guard(): Promise<VolumeImages>
  /** ERR_VOLUME_BROKEN when the record (as last read) is unusable. */
  usable(): void
  /** ERR_NOT_SAVE_ON_STOP naming `op` unless the volume commits on stop. */
  requireSaveOnStop(op: string): void
  /** Delete the volume's temp files and import ('incomplete') or every file of it ('all'). */
  removeImages(which: 'incomplete' | 'all'): Promise<void>
  /** The source volume's paths (snapOnStart kinds); ERR_INVALID_VID when the record names none. */
  sourcePaths(): VolumePaths
  /** ERR_MISSING_IMAGE naming `path`. */
  missing(path: string): Error
}
