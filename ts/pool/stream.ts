// Stream variants of the data path.
// Export: a Readable of the committed image that reads only its data runs
// (SEEK_DATA/SEEK_HOLE in the native layer) and produces holes as zeros.
// Import: writes a stream into the sparse import file through the native
// ImportWriter, which leaves all-zero blocks as holes; the caller commits only
// when the stream delivered exactly `size` bytes and nothing failed.
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { abortError } from '../errors'
import { chunkBytes } from '../validate'
import { poolError } from './fail'
import type { PoolFiles } from './files'
import type { ImportStreamOptions } from './types'

/** Bytes per read or write: large enough to amortise a threadpool round trip, block-aligned. */
export const CHUNK = 1 << 20

/** Zeros for the range [from, to) in chunks of at most CHUNK bytes. */
function* zeros(from: number, to: number): Generator<Buffer> {
  for (let pos = from; pos < to; pos += CHUNK) yield Buffer.alloc(Math.min(CHUNK, to - pos))
}

async function* readRange(fh: FileHandle, from: number, to: number): AsyncGenerator<Buffer> {
  for (let pos = from; pos < to; ) {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, to - pos))
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
    if (bytesRead === 0) {
      // The file shrank under us (cannot happen to a committed image, which is never modified in place).
      throw poolError('ERR_SOURCE_CHANGED', `Image shrank while being exported at offset ${pos}`)
    }
    pos += bytesRead
    yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
  }
}

/** Open the exported path and map its data runs, retrying if a commit swapped the inode in between. */
async function openMapped(files: PoolFiles, path: string) {
  for (let attempt = 0; ; attempt++) {
    const fh = await open(path, 'r')
    try {
      const st = await fh.stat()
      const map = await files.dataRuns(path)
      const now = await files.image(path)
      if (now && now.ino === st.ino && now.dev === st.dev) return { fh, size: st.size, runs: map.runs }
    } catch (e) {
      await fh.close()
      throw e
    }
    await fh.close()
    if (attempt >= 5) throw poolError('ERR_SOURCE_CHANGED', `${path} kept changing while being opened for export`, { path })
  }
}

export function exportStream(files: PoolFiles, exportPath: () => Promise<string>): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const path = await exportPath()
    const { fh, size, runs } = await openMapped(files, path)
    try {
      let pos = 0
      for (const run of runs) {
        const start = Math.min(run.offset, size)
        const end = Math.min(run.offset + run.length, size)
        if (end <= pos) continue
        yield* zeros(pos, Math.max(pos, start))
        yield* readRange(fh, Math.max(pos, start), end)
        pos = end
      }
      yield* zeros(pos, size)
    } finally {
      await fh.close()
    }
  }
  return Readable.from(generate(), { objectMode: false })
}

/** Settle with `p`, or reject with an AbortError as soon as `signal` aborts. */
function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
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

/**
 * Write exactly `size` bytes of `readable` into the existing sparse file
 * `path`, in CHUNK-aligned writes so the writer can leave whole zero blocks as
 * holes, and fsync it. Throws (leaving the file to the caller to delete) on a
 * short or long stream, a stream error, or an abort.
 */
export async function writeImport(
  files: PoolFiles,
  path: string,
  readable: AsyncIterable<unknown>,
  size: number,
  opts: ImportStreamOptions = {},
): Promise<void> {
  const { signal, onProgress } = opts
  const writer = await files.openImportWriter(path)
  const it = readable[Symbol.asyncIterator]()
  const staging = Buffer.allocUnsafe(CHUNK)
  let filled = 0
  let written = 0
  let finished = false
  const flush = async () => {
    if (filled === 0) return
    if (signal?.aborted) throw abortError(signal)
    await writer.write(written, staging.subarray(0, filled))
    written += filled
    filled = 0
    onProgress?.(written, size)
  }
  try {
    for (;;) {
      const next = await raceAbort(it.next(), signal)
      if (next.done) break
      const chunk = chunkBytes('chunk', next.value)
      if (written + filled + chunk.length > size) {
        throw poolError('ERR_INVALID_ARG_VALUE', `Import stream is longer than the announced size of ${size} bytes`, { path })
      }
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(CHUNK - filled, chunk.length - off)
        staging.set(chunk.subarray(off, off + n), filled)
        filled += n
        off += n
        if (filled === CHUNK) await flush()
      }
    }
    await flush()
    if (written !== size) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Import stream ended after ${written} of ${size} bytes`, { path })
    }
    if (signal?.aborted) throw abortError(signal)
    await writer.finish()
    finished = true
  } finally {
    if (!finished) {
      await writer.close().catch(() => {})
      // Stop the producer (destroys a Node stream).
      await it.return?.().catch(() => {})
    }
  }
}
