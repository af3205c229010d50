// Public types of the pool and volume API (docs/design.md §3).
import type { CopyMethod } from '../copy'

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

export interface CopyReport {
  method: CopyMethod
  bytes: number
}
