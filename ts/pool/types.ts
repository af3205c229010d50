// Public types of the pool and volume API (issue 3, SPEC §3).

export const DRIVER = 'file-reflink' as const

export interface PoolOptions {
  /** The pool directory; made absolute. Created (with its parents) on first open. */
  dirPath: string
  /** Defaults to the persisted name, else the directory's base name. */
  name?: string
  /** Revisions kept per save-on-stop volume (default 1; -1 disables snapshots). */
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
  /** Inherited from the pool when not given. */
  revisionsToKeep?: number
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
  /** null: inherit the pool's. */
  revisionsToKeep: number | null
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
