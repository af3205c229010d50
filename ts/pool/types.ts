// Public types of the pool and volume API (docs/design.md §3).

export const DRIVER = 'file-reflink' as const

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
  ephemeralVolatile?: boolean
}

export interface PoolConfig {
  name: string
  dirPath: string
  driver: typeof DRIVER
  revisionsToKeep: number
  ephemeralVolatile: boolean
}

export interface UsageDetails {
  dataSize?: number
  dataUsage?: number
}

export interface VolumeOptions {
  /** Defaults to `<vm.dirPathPrefix>/<vm.name>/<name>`. */
  vid?: string
  vm?: { name: string; dirPathPrefix: string }
  name: string
  /** Bytes; a safe non-negative integer (default 0). */
  size?: number
  /** Default true. */
  rw?: boolean
  saveOnStop?: boolean
  snapOnStart?: boolean
  /** The source volume (or its vid) of a snapOnStart volume; same pool. */
  source?: string | { vid: string }
  /** Copied from the pool's default when not given, then fixed (see ReflinkVolume.setConfig). */
  revisionsToKeep?: number
}

/**
 * Options of `pool.adoptVolume`: those of createVolume, with saveOnStop
 * defaulting to true. The size of a save-on-stop volume comes from its image.
 */
export type AdoptOptions = VolumeOptions

/** What `pool.adoptAll` did. */
export interface AdoptReport {
  /** Vids registered as new save-on-stop volumes, sorted. */
  adopted: string[]
  /** Image sets left alone, and why (an invalid name, no clean image, ...). */
  skipped: Array<{ path: string; reason: string }>
}

/** The per-volume settings `volume.setConfig` changes (like `qvm-volume config`). */
export interface VolumeConfigOptions {
  revisionsToKeep?: number
  rw?: boolean
}

/** What is persisted per volume (`.reflink-pool/volumes/<vid>.json`). */
export interface VolumeRecord {
  vid: string
  name: string
  rw: boolean
  saveOnStop: boolean
  snapOnStart: boolean
  source: string | null
  /** Nominal size in bytes (the image sizes win when images exist). */
  size: number
  /** Copied from the pool's default at creation, then changed only by setConfig. */
  revisionsToKeep: number
  /** @internal Set while createVolume makes the files (recovery undoes an unfinished create). */
  creating?: true
}

export interface VolumeUsage {
  /** Allocated bytes of the dirty (else clean) image. */
  allocated: number
  /** Bytes in extents shared with other files (reflinks). */
  shared: number
  /** Bytes in extents not shared. */
  exclusive: number
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
  allowShrink?: boolean
}

export interface ImportStreamOptions {
  signal?: AbortSignal
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

export interface ImportFileOptions {
  signal?: AbortSignal
  /** Bytes of data copied so far, of the file's data (0 of 0 for a reflink). */
  onProgress?: (doneBytes: number, totalBytes: number) => void
  /** 'always': all-zero blocks of the file's data become holes too (reads every data byte, never reflinks). Default 'auto'. */
  sparse?: 'auto' | 'always'
  /** The image's size (default: the file's): cut, or zero-extended with a hole. */
  size?: number
}

export interface ExportFileOptions {
  signal?: AbortSignal
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

export interface ExportStreamOptions {
  /** First byte (default 0). */
  start?: number
  /** Last byte, inclusive as in fs.createReadStream (default: the end of the image). */
  end?: number
  signal?: AbortSignal
}

export interface CopyReport {
  method: 'reflink' | 'copy-range' | 'read-write' | 'empty'
  bytes: number
}
