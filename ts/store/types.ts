// Public types of the pool and volume API (docs/design.md §3).
import type { CopyMethod } from '../copy'
import type { VolumeKind } from './kind'

/** The driver name of every pool (that of the Qubes OS storage driver it follows). */
export const DRIVER = 'file-reflink' as const

/** Options of `ReflinkPool.open`. */
export interface PoolOptions {
  /** The pool directory; made absolute. Created (with its parents) on first open. */
  dirPath: string
  /** Defaults to the persisted name, else the directory's base name. */
  name?: string
  /**
   * The default revisionsToKeep of volumes created (or adopted) from now on
   * (default 1; -1 disables snapshots). Existing volumes keep their own:
   * change one with `volume.setConfig`.
   */
  revisionsToKeep?: number
  /** Refuse a filesystem that cannot reflink (default true). */
  setupCheck?: boolean
  /** Volatile volumes hold data the VM layer encrypts with a throw-away key (default false). */
  ephemeralVolatile?: boolean
  /**
   * The space guard's floor (default 0: off): bytes, or a percentage of the
   * filesystem ('10%'). Clone, create, start, import and receive refuse with
   * ERR_LOW_SPACE when what they write could leave less free; stop and remove
   * always run (docs/design.md §7). Persisted like the other options.
   */
  minFree?: MinFree
}

/** A pool's configuration as persisted (`pool.config`). */
export interface PoolConfig {
  /** The pool's name. */
  name: string
  /** The absolute pool directory. */
  dirPath: string
  /** Always `file-reflink`. */
  driver: typeof DRIVER
  /** The default revisionsToKeep of volumes created from now on. */
  revisionsToKeep: number
  /** See PoolOptions.ephemeralVolatile. */
  ephemeralVolatile: boolean
  /** See PoolOptions.minFree (0 when not set). */
  minFree: MinFree
}

/** The pool settings `pool.setConfig` changes. */
export interface PoolConfigOptions {
  /** See PoolOptions.minFree; 0 turns the guard off. */
  minFree?: MinFree
}

/** What `pool.usageIfRemoved` reports. */
export interface IfRemovedReport {
  /** The volumes counted, sorted. */
  vids: string[]
  /** Bytes removing them would give back: their data extents that no other file of the pool maps (revisions, precache and temp files included). */
  freed: number
  /** Their files that exist. */
  files: number
}

/** statvfs figures of the pool's filesystem; both absent when the directory is missing. */
export interface UsageDetails {
  /** Size of the filesystem in bytes. */
  dataSize?: number
  /** Bytes used on it. */
  dataUsage?: number
}

/** Options of `pool.createVolume`. */
export interface VolumeOptions {
  /** Defaults to `<vm.dirPathPrefix>/<vm.name>/<name>`. */
  vid?: string
  /** The VM the volume belongs to, when `vid` is not given. */
  vm?: {
    /** The VM's name (the vid's middle component). */
    name: string
    /** 'appvms' or 'vm-templates'. */
    dirPathPrefix: string
  }
  /**
   * The volume's name (the vid's last component, e.g. 'root', 'private'):
   * needed with `vm`; with `vid` it is derived, and a different one is refused.
   */
  name?: string
  /**
   * What the volume is (docs/design.md §3). Default: from saveOnStop and
   * snapOnStart when either is given (a missing one is false, as in Qubes),
   * else 'origin' (its data is kept at stop). A flag given beside `kind` must
   * agree with it.
   */
  kind?: VolumeKind
  /** Bytes; a safe non-negative integer (default 0). */
  size?: number
  /** Default true. */
  rw?: boolean
  /** Commit the running image on stop (origin kinds); see `kind` for the default. */
  saveOnStop?: boolean
  /** Start from a fresh reflink of `source` (snapshot kinds); see `kind` for the default. */
  snapOnStart?: boolean
  /** The source volume (or its vid) of a snapOnStart volume; same pool. */
  source?:
    | string
    | {
        /** The source's vid. */
        vid: string
      }
  /** Copied from the pool's default when not given, then fixed (see ReflinkVolume.setConfig). */
  revisionsToKeep?: number
}

/**
 * Options of `pool.adoptVolume`: those of createVolume (the same default kind,
 * origin). The size of an origin comes from its image.
 */
export type AdoptOptions = VolumeOptions

/** What `pool.adoptAll` did. */
export interface AdoptReport {
  /** Vids registered as new save-on-stop volumes, sorted. */
  adopted: string[]
  /** Image sets left alone, and why (an invalid name, no clean image, ...). */
  skipped: Array<{
    /** The image file left alone. */
    path: string
    /** Why. */
    reason: string
  }>
}

/** The per-volume settings `volume.setConfig` changes (like `qvm-volume config`). */
export interface VolumeConfigOptions {
  /** Revisions kept on commit (-1: snapshots disabled). */
  revisionsToKeep?: number
  /** Whether the VM may write the volume. */
  rw?: boolean
}

/** What is persisted per volume (`.reflink-pool/volumes/<vid>.json`). */
export interface VolumeRecord {
  /** `<appvms|vm-templates>/<vm>/<name>`. */
  vid: string
  /** The vid's last component. */
  name: string
  /** Whether the VM may write it. */
  rw: boolean
  /** See VolumeOptions.saveOnStop. */
  saveOnStop: boolean
  /** See VolumeOptions.snapOnStart. */
  snapOnStart: boolean
  /** The source's vid (snapOnStart volumes), else null. */
  source: string | null
  /** Nominal size in bytes (the image sizes win when images exist). */
  size: number
  /** Copied from the pool's default at creation, then changed only by setConfig. */
  revisionsToKeep: number
  /** @internal Set while createVolume makes the files (recovery undoes an unfinished create). */
  creating?: true
}

/** FIEMAP figures of a volume's current image (`volume.usage()`). */
export interface VolumeUsage {
  /** Allocated bytes of the dirty (else clean) image. */
  allocated: number
  /** Bytes in extents shared with other files (reflinks). */
  shared: number
  /** Bytes in extents not shared. */
  exclusive: number
  /** Number of extents. */
  extents: number
}

/**
 * The signal of a long volume call (start, stop, revert, resize, importVolume,
 * exportStream). It is checked at safe points and passed to the data copies:
 * an aborted call rejects with AbortError (code ABORT_ERR) and changes nothing
 * visible. Past a call's point of no return (a commit's rename) it completes.
 */
export interface AbortOptions {
  /** Abort the call (see above). */
  signal?: AbortSignal
}

export interface StopOptions extends AbortOptions {
  /** Drop the dirty image of a save-on-stop volume instead of committing it. */
  discard?: boolean
}

export interface ResizeOptions extends AbortOptions {
  /** Allow a smaller size (data past the new end is lost); refused with ERR_SHRINK_REFUSED otherwise. */
  allowShrink?: boolean
}

/** Options of `volume.importStream`. */
export interface ImportStreamOptions {
  /** Abort the import: nothing is committed and the staging file is removed. */
  signal?: AbortSignal
  /** Called with the bytes written so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** Options of `volume.importFile`. */
export interface ImportFileOptions {
  /** Abort the import: nothing is committed and the staging file is removed. */
  signal?: AbortSignal
  /** Bytes of data copied so far, of the file's data (0 of 0 for a reflink). */
  onProgress?: (doneBytes: number, totalBytes: number) => void
  /** 'auto' (default): a reflink where possible, else a copy whose all-zero blocks become holes. 'always': that copy even where a reflink was possible (reads every data byte). */
  sparse?: 'auto' | 'always'
  /** The image's size (default: the file's): cut, or zero-extended with a hole. */
  size?: number
}

/** Options of `volume.exportToFile`. */
export interface ExportFileOptions {
  /** Abort the export: the destination is left as it was. */
  signal?: AbortSignal
  /** Called with the bytes of data copied so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** Options of `volume.exportStream`. */
export interface ExportStreamOptions {
  /** First byte (default 0). */
  start?: number
  /** Last byte, inclusive as in fs.createReadStream (default: the end of the image). */
  end?: number
  /** Abort the stream: it is destroyed with an AbortError. */
  signal?: AbortSignal
}

/** Options of `volume.exportPipe`. */
export interface ExportPipeOptions extends ExportStreamOptions {
  /** Called with the bytes written so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** How `volume.importVolume` copied the data. */
export interface CopyReport {
  /** The strategy that ran. */
  method: CopyMethod
  /** Bytes of data moved (0 for a reflink). */
  bytes: number
}

/** A pool's floor of free space: bytes, or a percentage of the filesystem's size ('10%'). */
export type MinFree = number | `${number}%`

/** How a batch makes its files durable before renaming them: one syncfs(2), or an fsync of each file. */
export type BatchBarrier = 'syncfs' | 'fsync'

/** Options of every batch call (cloneVolumes, startVolumes, stopVolumes). */
export interface BatchOptions {
  /** Checked between volumes and once more before the first rename: an aborted batch changes nothing. */
  signal?: AbortSignal
  /** `(doneVolumes, totalVolumes)`, throttled like copyFile's; the final report comes just before the promise resolves. */
  onProgress?: (done: number, total: number) => void
  /** Default 'syncfs' (docs/design.md §7 has the measurements). */
  barrier?: BatchBarrier
}

/** Options of `pool.removeVolumes`. */
export interface RemoveVolumesOptions extends BatchOptions {
  /** Remove running volumes too (their dirty image goes with the rest). Default false: ERR_VOLUME_DIRTY. */
  force?: boolean
  /** Also remove every volume that depends on one of them (snapshot volumes of a source), transitively. Default false: ERR_HAS_DEPENDENTS. */
  recursive?: boolean
}
