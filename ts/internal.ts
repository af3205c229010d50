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
//   fsStats(dir)            { size, used } bytes of the filesystem (statvfs).
//   dataRuns(path)          { size, runs: [{ offset, length }] }: the data runs of a sparse
//                           file (SEEK_DATA/SEEK_HOLE); everything else reads as zeros. For
//                           sparse stream export: read and send only the runs.
//   openImportWriter(path)  an ImportWriter on an EXISTING file (create it sparse of the
//                           final size first, e.g. createSparseFile), opened through its
//                           directory's handle as a writable image (a regular file with
//                           one link; the directory must pass the pool's ownership and
//                           mode checks). The pool's own imports use PoolFiles.openImportWriter.
//                           write(offset, data)
//                           writes at offset leaving all-zero blocks (fs block size) as holes
//                           and resolves the bytes really written; writes past the size at
//                           open are refused (ERR_INVALID_ARG_VALUE). finish() fsyncs and
//                           closes; close() abandons without fsync. Writes run one at a time.
//   __testPanic(message)    a native task that panics: rejects with ERR_INTERNAL (tests only).
//
// Every call is one native task on the threadpool and rejects with a
// ReflinkPoolError carrying code/errno/syscall/path/dest.
import { basename, dirname } from 'node:path'
import { native } from './binding'
import { unwrap, type Outcome } from './outcome'
import { validateBuffer, validateMode, validatePath, validateSize } from './validate'

export interface FsStats {
  /** Total bytes of the filesystem. */
  size: number
  /** Used bytes. */
  used: number
}

export interface DataRun {
  offset: number
  length: number
}

export class ImportWriter {
  /** Use `openImportWriter` (or `PoolFiles.openImportWriter`). */
  private constructor(private readonly writer: InstanceType<typeof native.ImportWriter>) {}

  /** Open the file `rel` of the directory handle `dir`. */
  static async open(dir: InstanceType<typeof native.PoolDir>, rel: string): Promise<ImportWriter> {
    const writer = new native.ImportWriter(dir, rel)
    await unwrap(writer.open())
    return new ImportWriter(writer)
  }

  /** Write `data` at `offset`, skipping all-zero blocks; resolves the bytes actually written. Do not modify `data` until it settles. */
  async write(offset: number, data: Uint8Array): Promise<number> {
    validateSize('offset', offset)
    validateBuffer('data', data)
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return unwrap(this.writer.write(offset, buf))
  }

  /** fsync and close. */
  async finish(): Promise<void> {
    await unwrap(this.writer.finish())
  }

  /** Close without fsync (abandoning the import). Idempotent. */
  async close(): Promise<void> {
    await unwrap(this.writer.close())
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
  dataRuns(path: string): Promise<{ size: number; runs: DataRun[] }>
  openImportWriter(path: string): Promise<ImportWriter>
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
  dataRuns: onPath((p) => native.dataRuns(p)),
  openImportWriter: async (path) => {
    validatePath('path', path)
    const dir = new native.PoolDir(dirname(path))
    await unwrap(dir.open(false))
    return ImportWriter.open(dir, basename(path))
  },
  __testPanic,
}
