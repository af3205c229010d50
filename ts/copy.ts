// copyFile: the durable copy (reflink, else sparse copy) as one native task,
// with AbortSignal cancellation and throttled progress.
import { native } from './binding'
import { abortError, libraryError } from './errors'
import { copySlots } from './limiter'
import type { Outcome } from './outcome'
import { runControlled } from './native-control'
import {
  validateBoolean, validateFunction, validateOneOf, validateOptions, validatePath, validateSignal, validateSize,
} from './validate'

/** Whether copyFile clones: 'auto' when it can, 'always' or fail, 'never' (always copy the data). */
export type ReflinkMode = 'auto' | 'always' | 'never'
/** Zero detection of a copy: 'auto' keeps the source's holes and copies its data as it is; 'always' also turns all-zero blocks into holes (reads every data byte, never reflinks). */
export type SparseMode = 'auto' | 'always'
/**
 * Every way a copy can be made, the one TS list (the native names come from
 * `CopyMethod` in crates/core/src/copy.rs; __test__/error-codes-parity.test.ts
 * checks they agree): a clone, copy_file_range of the data runs, pread/pwrite of
 * them, or an empty file (size 0).
 */
export const COPY_METHODS = ['reflink', 'copy-range', 'read-write', 'empty'] as const
/** How a copy was made: one of COPY_METHODS. */
export type CopyMethod = (typeof COPY_METHODS)[number]

/** Options of copyFile; every one is optional. */
export interface CopyFileOptions {
  /** 'auto' (default): clone when the filesystem can, else sparse copy. 'always': clone or reject with ERR_REFLINK_UNSUPPORTED. 'never': always copy. */
  reflink?: ReflinkMode
  /** Truncate or zero-extend the result to this many bytes; 0 creates an empty file without reading the source. */
  size?: number
  /** Give the result the source's mtime (ns precision). Default false: the result's mtime is the copy time. */
  copyMtime?: boolean
  /**
   * 'auto' (default): a clone where the filesystem can; any copy that is not a clone
   * keeps the source's holes and turns its all-zero blocks into holes too (as
   * `cp --sparse=always`). 'always' (like `qemu-img convert -S`): the same without ever
   * cloning, for fully allocated raw files on a filesystem that could clone them (method
   * `read-write`); cannot be combined with reflink: 'always'.
   */
  sparse?: SparseMode
  /** Abort between chunks: the promise rejects with an AbortError and `dst` is untouched (no temp file left). */
  signal?: AbortSignal
  /** Called on the JS thread with the first report, then at most every 64 MiB or 100 ms, and with the final one just before the promise resolves; never after it settles. If it throws, the copy is cancelled and rejects with that error (a copy that completed before the cancel landed stands, and the error becomes a process warning). */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

/** How a copyFile went. */
export interface CopyResult {
  /** Which strategy ran (tests assert it). */
  method: CopyMethod
  /** Bytes of data moved (0 for a reflink or an empty result). */
  bytes: number
}

const REFLINK_MODES: readonly ReflinkMode[] = ['auto', 'always', 'never']
const SPARSE_MODES: readonly SparseMode[] = ['auto', 'always']
const COPY_OPTION_KEYS = ['reflink', 'size', 'copyMtime', 'sparse', 'signal', 'onProgress'] as const

/**
 * Make `dst` a copy of `src`, atomically and durably: a temp file `<dst>~<random>`
 * (mode 0600) beside it, fsync, rename over `dst`, fsync the directory. Creates
 * `dst`'s parent directory if missing. Holes stay holes.
 */
export async function copyFile(src: string, dst: string, options: CopyFileOptions = {}): Promise<CopyResult> {
  validatePath('src', src)
  validatePath('dst', dst)
  const { reflink = 'auto', size, copyMtime = false, sparse = 'auto', signal, onProgress } = validateOptions('options', options, COPY_OPTION_KEYS)
  validateOneOf('options.reflink', reflink, REFLINK_MODES)
  validateOneOf('options.sparse', sparse, SPARSE_MODES)
  if (sparse === 'always' && reflink === 'always') {
    throw libraryError('ERR_INVALID_ARG_VALUE', "The options sparse: 'always' and reflink: 'always' exclude each other: finding zero blocks means reading the data, which a clone never does")
  }
  if (size !== undefined) validateSize('options.size', size)
  validateBoolean('options.copyMtime', copyMtime)
  if (signal !== undefined) validateSignal('options.signal', signal)
  if (onProgress !== undefined) validateFunction('options.onProgress', onProgress)
  return runCopy((token, progress) => native.copyFile(src, dst, { reflink, size, copyMtime, sparse }, token, progress), signal, onProgress, reflink === 'always')
}

/** The native copy task's result. */
type NativeCopyOutcome = Outcome<{ method: CopyMethod; bytes: number; lastProgress?: { done: number; total: number } | null }>

/**
 * Run one native copy task (`start` gets the cancel token and the progress
 * callback) in a copy slot, with AbortSignal cancellation and the progress
 * rules of `copyFile`. Shared by `copyFile` and the pool's copies
 * (`PoolFiles.copy`, through the pool's directory handle). A clone only
 * (`cloneOnly`: reflink 'always') takes no slot: the slots bound the copies
 * that move data, and a clone never does (a commit's fresh precache is one,
 * and a thousand stops should not queue behind two slots).
 */
export async function runCopy(
  start: (token: InstanceType<typeof native.CancelToken>, progress: ((done: number, total: number) => void) | undefined) => Promise<NativeCopyOutcome>,
  signal: AbortSignal | undefined,
  onProgress: ((doneBytes: number, totalBytes: number) => void) | undefined,
  cloneOnly = false,
): Promise<CopyResult> {
  if (signal?.aborted) throw abortError(signal)
  const copy = async () => {
    const { method, bytes } = await runControlled('copyFile', signal, onProgress, start)
    return { method, bytes }
  }
  return cloneOnly ? copy() : copySlots.run(copy, signal)
}
