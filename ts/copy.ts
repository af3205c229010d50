// copyFile: the durable copy (reflink, else sparse copy) as one native task,
// with AbortSignal cancellation and throttled progress.
import { native } from './binding'
import { abortError, isReflinkPoolError, libraryError } from './errors'
import { copySlots } from './limiter'
import { unwrap } from './outcome'
import {
  validateBoolean, validateFunction, validateOneOf, validateOptions, validatePath, validateSignal, validateSize,
} from './validate'

export type ReflinkMode = 'auto' | 'always' | 'never'
export type SparseMode = 'auto' | 'always'
/** How a copy was made: a clone, copy_file_range of the data runs, pread/pwrite of them, or an empty file (size 0). */
export type CopyMethod = 'reflink' | 'copy-range' | 'read-write' | 'empty'

export interface CopyFileOptions {
  /** 'auto' (default): clone when the filesystem can, else sparse copy. 'always': clone or reject with ERR_REFLINK_UNSUPPORTED. 'never': always copy. */
  reflink?: ReflinkMode
  /** Truncate or zero-extend the result to this many bytes; 0 creates an empty file without reading the source. */
  size?: number
  /** Give the result the source's mtime (ns precision). Default false: the result's mtime is the copy time. */
  copyMtime?: boolean
  /**
   * 'auto' (default): holes of the source stay holes, its data is copied as it is.
   * 'always' (like `cp --sparse=always`, `qemu-img convert -S`): all-zero blocks of the
   * data become holes too, for fully allocated raw files; reads every data byte, never
   * clones (method `read-write`), and cannot be combined with reflink: 'always'.
   */
  sparse?: SparseMode
  /** Abort between chunks: the promise rejects with an AbortError and `dst` is untouched (no temp file left). */
  signal?: AbortSignal
  /** Called on the JS thread with the first report, then at most every 64 MiB or 100 ms, and with the final one just before the promise resolves; never after it settles. If it throws, the copy is cancelled and rejects with that error (a copy that completed before the cancel landed stands, and the error becomes a process warning). */
  onProgress?: (doneBytes: number, totalBytes: number) => void
}

export interface CopyResult {
  method: CopyMethod
  /** Bytes of data moved (0 for a reflink or an empty result). */
  bytes: number
}

const REFLINK_MODES: readonly ReflinkMode[] = ['auto', 'always', 'never']
const SPARSE_MODES: readonly SparseMode[] = ['auto', 'always']

/**
 * Make `dst` a copy of `src`, atomically and durably: a temp file `<dst>~<random>`
 * (mode 0600) beside it, fsync, rename over `dst`, fsync the directory. Creates
 * `dst`'s parent directory if missing. Holes stay holes.
 */
export async function copyFile(src: string, dst: string, options: CopyFileOptions = {}): Promise<CopyResult> {
  validatePath('src', src)
  validatePath('dst', dst)
  validateOptions('options', options)
  const { reflink = 'auto', size, copyMtime = false, sparse = 'auto', signal, onProgress } = options
  validateOneOf('options.reflink', reflink, REFLINK_MODES)
  validateOneOf('options.sparse', sparse, SPARSE_MODES)
  if (sparse === 'always' && reflink === 'always') {
    throw libraryError('ERR_INVALID_ARG_VALUE', "The options sparse: 'always' and reflink: 'always' exclude each other: finding zero blocks means reading the data, which a clone never does")
  }
  if (size !== undefined) validateSize('options.size', size)
  validateBoolean('options.copyMtime', copyMtime)
  if (signal !== undefined) validateSignal('options.signal', signal)
  if (onProgress !== undefined) validateFunction('options.onProgress', onProgress)
  if (signal?.aborted) throw abortError(signal)

  return copySlots.run(async () => {
    const token = new native.CancelToken()
    const onAbort = () => token.cancel()
    signal?.addEventListener('abort', onAbort, { once: true })
    // A throwing callback must not reach native code (it would be an uncaught
    // exception): remember it and stop the copy. Reports still queued when the
    // copy settles are dropped; the final one comes with the result and is
    // delivered here, so onProgress never runs after the promise settles.
    let settled = false
    let progressError: { error: unknown } | undefined
    const progress = onProgress && ((done: number, total: number) => {
      if (settled || progressError) return
      try {
        onProgress(done, total)
      } catch (error) {
        progressError = { error }
        token.cancel()
      }
    })
    try {
      const { method, bytes, lastProgress } = await unwrap(
        native.copyFile(src, dst, { reflink, size, copyMtime, sparse }, token, progress),
      )
      if (progress && lastProgress) progress(lastProgress.done, lastProgress.total)
      // The copy finished before a cancel could land: it stands, and the
      // callback's error is surfaced as a warning rather than lost.
      if (progressError) process.emitWarning(`copyFile: onProgress threw after the copy completed: ${String(progressError.error)}`)
      return { method, bytes }
    } catch (e) {
      if (progressError) throw progressError.error
      if (isReflinkPoolError(e, 'ABORT_ERR')) throw abortError(signal)
      throw e
    } finally {
      settled = true
      signal?.removeEventListener('abort', onAbort)
    }
  }, signal)
}
