// Building blocks for the pool/volume policy layer. NOT public API: exported
// from the package only as `internal`, and may change in any release.
//
//   hardlink(src, dst)      link(2), then fsync dst's directory.
//   rename(src, dst)        rename(2) over dst, then fsync both directories.
//   remove(path)            unlink(2) (ENOENT ignored), fsync the directory; resolves whether it existed.
//   mkdir(path)             mkdir -p, fsyncing each parent whose entry was created.
//   writeFile(path, data, mode = 0o600)
//                           temp file beside path + fsync + rename + dir fsync (for small files: configs).
//   fsyncFile(path), fsyncDir(path)
//   fsStats(dir)            { size, used, available } bytes of the filesystem (statvfs).
//   dataRuns(path, { start, limit })
//                           { size, runs: [{ offset, length }], next }: at most `limit`
//                           (default 4096) data runs of a sparse file from offset `start`
//                           (SEEK_DATA/SEEK_HOLE); everything else reads as zeros. `next` is
//                           where the following batch starts (undefined at the end).
//   openImportWriter(path)  an ImportWriter on an EXISTING file (create it sparse of the
//                           final size first, e.g. createSparseFile), opened through its
//                           directory's handle as a writable image (a regular file with
//                           one link; the directory must pass the pool's ownership and
//                           mode checks). The pool's own imports use PoolFiles.openImportWriter.
//                           write(chunks) appends the chunks (a stream, from offset 0)
//                           leaving all-zero blocks (fs block size) as holes however the
//                           chunks are cut; pump(source) reads a pipe/FIFO/file path
//                           natively instead; writes past the size at open are refused
//                           (ERR_INVALID_ARG_VALUE). finish() writes the last partial block,
//                           fsyncs and closes; close() abandons without fsync. Each resolves
//                           { position, written }. One at a time.
//   openExportReader(path, { start, end })
//                           an ExportReader on a regular file (never followed): read(buf)
//                           fills buf with the next bytes of [start, end) and resolves
//                           { data, hole }: `data` bytes in buf (short holes as zeros), then
//                           `hole` bytes of zeros that were not read; 0 + 0 is the end.
//                           pump(fd, { signal, onProgress }) writes the rest into an open
//                           descriptor natively instead (one task; holes as zeros).
//                           close() releases the file. Reads run one at a time.
//   __testPanic(message)    a native task that panics: rejects with ERR_INTERNAL (tests only).
//
// Every call is one native task on the threadpool and rejects with a
// ReflinkPoolError carrying code/errno/syscall/path/dest.
import { basename, dirname } from 'node:path'
import { native } from './binding'
import { libraryError } from './errors'
import { unwrap, type Outcome } from './outcome'
import { runControlled } from './native-control'
import { validateBuffer, validateMode, validatePath, validateSize } from './validate'

export interface FsStats {
  /** Total bytes of the filesystem. */
  size: number
  /** Used bytes. */
  used: number
  /** Bytes unprivileged writers can still allocate (statvfs f_bavail), as `df` shows. */
  available: number
}

export interface DataRun {
  offset: number
  length: number
}

/** Where an ImportWriter stands: bytes of the stream received, and really written (zero blocks are not). */
export interface ImportPosition {
  position: number
  written: number
}

export class ImportWriter {
  /** Use `openImportWriter` (or `PoolFiles.openImportWriter`). */
  private constructor(
    private readonly writer: InstanceType<typeof native.ImportWriter>,
    /** The directory handle opened for this writer alone (`openImportWriter`): closed with it. */
    private readonly ownDir: InstanceType<typeof native.PoolDir> | null,
  ) {}

  /** Open the file `rel` of the directory handle `dir`; with `ownDir`, `dir` is closed when this fails or the writer is done. */
  static async open(dir: InstanceType<typeof native.PoolDir>, rel: string, ownDir = false): Promise<ImportWriter> {
    const writer = new native.ImportWriter(dir, rel)
    try {
      await unwrap(writer.open())
    } catch (e) {
      if (ownDir) dir.close()
      throw e
    }
    return new ImportWriter(writer, ownDir ? dir : null)
  }

  /** Append `chunks` to the stream, skipping all-zero blocks. Do not modify them until it settles. */
  async write(chunks: Uint8Array | readonly Uint8Array[]): Promise<ImportPosition> {
    const list = chunks instanceof Uint8Array ? [chunks] : chunks
    if (!Array.isArray(list)) validateBuffer('chunks', chunks)
    const bufs = list.map((c, i) => {
      validateBuffer(`chunks[${i}]`, c)
      return Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength)
    })
    return unwrap(this.writer.write(bufs))
  }

  /**
   * Read the stream natively from `source` (a pipe, FIFO or file path; '/dev/stdin') to
   * its end and append it; refused (ERR_INVALID_ARG_VALUE) past the size. The signal
   * is seen within 100 ms even while the source is idle.
   */
  pump(source: string, opts: PumpOptions = {}): Promise<ImportPosition> {
    validatePath('source', source)
    return runControlled('import', opts.signal, opts.onProgress, (token, progress) => this.writer.pump(source, token, progress))
  }

  /** Write the last partial block, fsync and close. */
  async finish(): Promise<ImportPosition> {
    const position = await unwrap(this.writer.finish())
    this.ownDir?.close() // after a failure, close() releases it
    return position
  }

  /** Close without fsync (abandoning the import). Idempotent. */
  async close(): Promise<void> {
    try {
      await unwrap(this.writer.close())
    } finally {
      this.ownDir?.close()
    }
  }
}

export interface PumpOptions {
  signal?: AbortSignal
  onProgress?: (done: number, total: number) => void
}

/** One ExportReader.read: `data` bytes at the start of the buffer, then `hole` bytes of zeros not read. */
export interface ExportSegment {
  data: number
  hole: number
}

export class ExportReader {
  /** Apparent size of the file at open. */
  size = 0
  /** The range being read: the asked one clipped to the size. */
  start = 0
  end = 0
  /** st_dev / st_ino of the open file (compare with an fs.Stats of the path). */
  dev = 0
  ino = 0

  /** Use `openExportReader` (or `PoolFiles.exportReader`). */
  private constructor(private readonly reader: InstanceType<typeof native.ExportReader>) {}

  /** Open the file `rel` of the directory handle `dir` (a regular file, never followed) and read [start, end). */
  static async open(dir: InstanceType<typeof native.PoolDir>, rel: string, range: { start?: number; end?: number } = {}): Promise<ExportReader> {
    const { start = 0, end } = range
    validateSize('start', start)
    if (end !== undefined) validateSize('end', end)
    const r = new ExportReader(new native.ExportReader(dir, rel))
    Object.assign(r, await unwrap(r.reader.open(start, end)))
    return r
  }

  /** Fill `buf` with the next bytes; do not use `buf` until it settles. */
  read(buf: Buffer): Promise<ExportSegment> {
    validateBuffer('buf', buf)
    return unwrap(this.reader.read(buf))
  }

  /**
   * Write the rest of the range into the open descriptor `fd` (a pipe, FIFO, socket or
   * file, at its offset; holes as zeros) natively, in one task; resolves to the bytes
   * written. Keep `fd` open until it settles. The signal is seen within 100 ms even
   * while the consumer does not read; a consumer that went away rejects with EPIPE.
   */
  pump(fd: number, opts: PumpOptions = {}): Promise<number> {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw libraryError('ERR_INVALID_ARG_VALUE', `fd must be an open file descriptor (a non-negative integer), got ${String(fd)}`)
    return runControlled('export', opts.signal, opts.onProgress, (token, progress) => this.reader.pump(fd, token, progress))
  }

  /** Release the file (after the last read settled). Idempotent. */
  close(): void {
    this.reader.close()
  }
}

/** A native call on one path, validated first. */
function onPath<T>(call: (path: string) => Promise<Outcome<T>>, name = 'path'): (path: string) => Promise<T> {
  return async (path) => {
    validatePath(name, path)
    return unwrap(call(path))
  }
}

/** The same for a call that resolves with nothing. */
function onPathVoid(call: (path: string) => Promise<Outcome<null>>): (path: string) => Promise<void> {
  const run = onPath(call)
  return async (path) => {
    await run(path)
  }
}

/** A native call from one path to another, validated first. */
function fromTo(call: (src: string, dst: string) => Promise<Outcome<null>>): (src: string, dst: string) => Promise<void> {
  return async (src, dst) => {
    validatePath('src', src)
    validatePath('dst', dst)
    await unwrap(call(src, dst))
  }
}

async function writeFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  validatePath('path', path)
  if (typeof data !== 'string') validateBuffer('data', data)
  validateMode('mode', mode)
  await unwrap(native.writeFile(path, Buffer.from(data), mode))
}

/** The directory handle of `path`'s parent (the pool's ownership and mode checks apply). */
async function parentDir(path: string): Promise<InstanceType<typeof native.PoolDir>> {
  validatePath('path', path)
  const dir = new native.PoolDir(dirname(path))
  await unwrap(dir.open(false))
  return dir
}

/** One batch of a file's data runs, and where the next batch starts (undefined: this one reached the end). */
export interface DataRunBatch {
  size: number
  runs: DataRun[]
  next?: number
}

async function dataRuns(path: string, batch: { start?: number; limit?: number } = {}): Promise<DataRunBatch> {
  validatePath('path', path)
  const { start, limit } = batch
  if (start !== undefined) validateSize('start', start)
  if (limit !== undefined) validateSize('limit', limit)
  const r = await unwrap(native.dataRuns(path, start, limit))
  return { size: r.size, runs: r.runs, next: r.next ?? undefined }
}

async function __testPanic(message = 'test panic'): Promise<never> {
  await unwrap(native.__testPanic(message))
  throw new Error('__testPanic resolved: the native panic was not raised')
}

export interface Internal {
  hardlink(src: string, dst: string): Promise<void>
  rename(src: string, dst: string): Promise<void>
  remove(path: string): Promise<boolean>
  mkdir(path: string): Promise<void>
  writeFile(path: string, data: string | Uint8Array, mode?: number): Promise<void>
  fsyncFile(path: string): Promise<void>
  fsyncDir(path: string): Promise<void>
  fsStats(dir: string): Promise<FsStats>
  dataRuns(path: string, batch?: { start?: number; limit?: number }): Promise<DataRunBatch>
  openImportWriter(path: string): Promise<ImportWriter>
  openExportReader(path: string, range?: { start?: number; end?: number }): Promise<ExportReader>
  __testPanic(message?: string): Promise<never>
}

export const internal: Internal = {
  hardlink: fromTo((src, dst) => native.hardlink(src, dst)),
  rename: fromTo((src, dst) => native.rename(src, dst)),
  remove: onPath((p) => native.remove(p)),
  mkdir: onPathVoid((p) => native.mkdir(p)),
  writeFile,
  fsyncFile: onPathVoid((p) => native.fsyncFile(p)),
  fsyncDir: onPathVoid((p) => native.fsyncDir(p)),
  fsStats: onPath((d) => native.fsStats(d), 'dir'),
  dataRuns,
  openImportWriter: async (path) => ImportWriter.open(await parentDir(path), basename(path), true),
  openExportReader: async (path, range) => ExportReader.open(await parentDir(path), basename(path), range),
  __testPanic,
}
