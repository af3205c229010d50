// Stream variants of the data path (docs/design.md §6).
// Export: a Readable of the committed image fed by the native ExportReader, which
// reads the data runs into large buffers and reports the holes; holes are pushed
// as slices of one shared zero buffer, never read from disk and never allocated
// per chunk. Nothing here holds the image's run map.
// Import: hands the stream's buffers, batched, to the native ImportWriter, which
// writes them in order and leaves all-zero blocks as holes (or, from a pipe or
// FIFO path, the writer reads the stream itself); the caller commits only when
// the stream delivered exactly `size` bytes and nothing failed.
import { Readable } from 'node:stream'
import type { ExportReader, ImportPosition } from '../store/files'
import { abortError } from '../errors'
import { chunkBytes } from '../validate'
import { poolError } from '../store/fail'
import type { PoolFiles } from '../store/files'
import type { ImportStreamOptions } from '../store/types'

/** Most bytes one native read fills: a threadpool round trip per 2 MiB of data. */
export const READ_CHUNK = 2 << 20
/** Bytes of stream handed to one native write (a batch of the stream's own buffers). */
export const WRITE_BATCH = 4 << 20

/**
 * The zeros every hole is pushed from. Chunks of an export stream are shared, as
 * Node's stream contract allows: a consumer must not write into them. As large as
 * the stream's high-water mark, so a hole slice fills the buffer alone (an async
 * iterator's read() would otherwise concatenate, i.e. copy, the buffered slices).
 */
const ZEROS = Buffer.alloc(2 * READ_CHUNK)

export interface ExportRange {
  /** First byte (default 0). */
  start?: number
  /** Last byte, INCLUSIVE as in fs.createReadStream (default: the end of the image). */
  end?: number
  signal?: AbortSignal
}

/** Open `path()` (the committed image) for reading, retrying when a commit swapped the inode between the lookup and the open. */
async function openStable(files: PoolFiles, exportPath: () => Promise<string>, range: { start: number; end?: number }): Promise<ExportReader> {
  for (let attempt = 0; ; attempt++) {
    const path = await exportPath()
    const reader = await files.exportReader(path, range)
    const now = await files.image(path).catch((e: unknown) => {
      reader.close()
      throw e
    })
    if (now && now.ino === reader.ino && now.dev === reader.dev) return reader
    reader.close()
    if (attempt >= 5) throw poolError('ERR_SOURCE_CHANGED', `${path} kept changing while being opened for export`, { path })
  }
}

class ExportStream extends Readable {
  private reader: ExportReader | null = null
  /** The native read in flight (at most one). */
  private pending: Promise<void> | null = null
  /** Bytes of zeros still to push for the last hole. */
  private hole = 0
  private ended = false

  constructor(
    private readonly opener: () => Promise<ExportReader>,
    private readonly signal: AbortSignal | undefined,
  ) {
    super({ highWaterMark: ZEROS.length })
    if (signal) {
      const onAbort = () => this.destroy(abortError(signal))
      if (signal.aborted) queueMicrotask(onAbort)
      else signal.addEventListener('abort', onAbort, { once: true })
      this.once('close', () => signal.removeEventListener('abort', onAbort))
    }
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.opener().then(
      (reader) => {
        this.reader = reader
        callback()
      },
      (e: Error) => callback(e),
    )
  }

  /** Push zeros of the current hole until it is done or the consumer has enough; false when full. */
  private pushHole(): boolean {
    while (this.hole > 0) {
      const n = Math.min(this.hole, ZEROS.length)
      this.hole -= n
      if (!this.push(ZEROS.subarray(0, n))) return false
    }
    return true
  }

  override _read(): void {
    if (this.pending || this.destroyed) return
    if (!this.pushHole()) return
    const reader = this.reader!
    if (this.ended) {
      this.push(null)
      return
    }
    const buf = Buffer.allocUnsafe(READ_CHUNK)
    this.pending = reader.read(buf).then(
      ({ data, hole }) => {
        this.pending = null
        if (this.destroyed) return
        if (data === 0 && hole === 0) {
          this.ended = true
          this.push(null)
          return
        }
        this.hole = hole
        if (data > 0 && !this.push(data === buf.length ? buf : buf.subarray(0, data))) return
        this.pushHole()
      },
      (e: Error) => {
        this.pending = null
        this.destroy(e)
      },
    )
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The native read holds the reader's lock: close after it settled.
    const settled = this.pending ?? Promise.resolve()
    void settled.then(() => {
      this.reader?.close()
      this.reader = null
      callback(error)
    })
  }
}

/** Check a createReadStream-like range (end inclusive) and turn it into the native [start, end). */
export function nativeRange(range: ExportRange): { start: number; end?: number } {
  const { start = 0, end } = range
  if (!Number.isSafeInteger(start) || start < 0) throw poolError('ERR_INVALID_ARG_VALUE', `start must be a safe non-negative integer, got ${String(start)}`)
  if (end === undefined || end === Infinity) return { start }
  if (!Number.isSafeInteger(end) || end < start) throw poolError('ERR_INVALID_ARG_VALUE', `end must be a safe integer >= start (${start}), got ${String(end)}`)
  return { start, end: end + 1 }
}

/** A Readable of `[start, end]` of the committed image that `exportPath` names. */
export function exportStream(files: PoolFiles, exportPath: () => Promise<string>, range: ExportRange = {}): Readable {
  const r = nativeRange(range)
  return new ExportStream(() => openStable(files, exportPath, r), range.signal)
}

/**
 * Write `[start, end]` of the committed image that `exportPath` names into the open
 * descriptor `fd` natively, in one task (no byte passes through JavaScript); resolves
 * to the bytes written.
 */
export async function pumpExport(files: PoolFiles, exportPath: () => Promise<string>, fd: number, range: ExportRange, onProgress?: (done: number, total: number) => void): Promise<number> {
  const reader = await openStable(files, exportPath, nativeRange(range))
  try {
    const written = await reader.pump(fd, { signal: range.signal, onProgress })
    onProgress?.(written, written)
    return written
  } finally {
    reader.close()
  }
}

/** Settle with `p`, or reject with an AbortError as soon as `signal` aborts. */
export function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/** A Buffer view of the same bytes (the native writers take Buffers). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * A chunk's bytes as a Buffer its consumer may hold on to: a Node Readable's chunks are the
 * consumer's once yielded (`owned`); any other producer may reuse a buffer it yielded, so
 * its bytes are copied.
 */
export function keptBytes(bytes: Uint8Array, owned: boolean): Buffer {
  return owned ? asBuffer(bytes) : Buffer.from(bytes)
}

/**
 * Write exactly `size` bytes of `readable` into the existing sparse file `path`
 * and fsync it. The stream's buffers go to the native writer in batches of about
 * WRITE_BATCH bytes, while the next batch is being read. A Node Readable's
 * chunks are handed over as they are (they belong to the consumer); chunks of any
 * other iterable are copied first, since its producer may reuse a buffer it
 * yielded. Throws (leaving the file to the caller to delete) on a short or long
 * stream, a chunk that is not bytes, a stream error, or an abort.
 */
export async function writeImport(
  files: PoolFiles,
  path: string,
  readable: AsyncIterable<unknown>,
  size: number,
  opts: ImportStreamOptions = {},
): Promise<void> {
  const { signal, onProgress } = opts
  const owned = readable instanceof Readable
  const writer = await files.openImportWriter(path)
  const it = readable[Symbol.asyncIterator]()
  let batch: Buffer[] = []
  let batchBytes = 0
  let received = 0
  let inflight: Promise<ImportPosition> | null = null
  let finished = false
  /** Wait for the write in flight (its failure surfaces here). */
  const settle = async () => {
    if (!inflight) return
    const at = await inflight
    inflight = null
    onProgress?.(at.position, size)
  }
  const send = async () => {
    await settle()
    if (signal?.aborted) throw abortError(signal)
    if (batchBytes === 0) return
    inflight = writer.write(batch)
    // Awaited by the next settle(); until then a failure must not count as unhandled.
    inflight.catch(() => {})
    batch = []
    batchBytes = 0
  }
  try {
    for (;;) {
      const next = await raceAbort(it.next(), signal)
      if (next.done) break
      const bytes = asBuffer(chunkBytes('chunk', next.value))
      if (bytes.length === 0) continue
      received += bytes.length
      if (received > size) {
        throw poolError('ERR_INVALID_ARG_VALUE', `Import stream is longer than the announced size of ${size} bytes`, { path })
      }
      batch.push(keptBytes(bytes, owned))
      batchBytes += bytes.length
      if (batchBytes >= WRITE_BATCH) await send()
    }
    await send()
    await settle()
    if (received !== size) {
      // Ctrl-C reaches both ends of a pipe: a sender that closed after an abort is not the cause.
      if (signal?.aborted) throw abortError(signal)
      throw poolError('ERR_INVALID_ARG_VALUE', `Import stream ended after ${received} of ${size} bytes`, { path })
    }
    if (signal?.aborted) throw abortError(signal)
    await writer.finish()
    finished = true
  } finally {
    if (!finished) {
      // (assigned in send(), which the compiler's flow analysis does not see)
      await (inflight as Promise<ImportPosition> | null)?.catch(() => {})
      await writer.close().catch(() => {})
      // Stop the producer (destroys a Node stream).
      await it.return?.().catch(() => {})
    }
  }
}

/**
 * Write exactly `size` bytes read natively from `source` (a pipe, FIFO or file
 * path) into the existing sparse file `path` and fsync it; no byte passes through
 * JavaScript. Throws (leaving the file to the caller to delete) on a short or long
 * stream, a read error, or an abort.
 */
export async function pumpImport(files: PoolFiles, path: string, source: string, size: number, opts: ImportStreamOptions = {}): Promise<void> {
  const writer = await files.openImportWriter(path)
  let finished = false
  try {
    const { position } = await writer.pump(source, opts)
    if (position !== size && opts.signal?.aborted) throw abortError(opts.signal) // the abort is the cause, as in writeImport
    if (position !== size) throw poolError('ERR_INVALID_ARG_VALUE', `Import stream ended after ${position} of ${size} bytes`, { path })
    await writer.finish()
    opts.onProgress?.(size, size)
    finished = true
  } finally {
    if (!finished) await writer.close().catch(() => {})
  }
}
