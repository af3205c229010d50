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
//                           final size first, e.g. createSparseFile). write(offset, data)
//                           writes at offset leaving all-zero blocks (fs block size) as holes
//                           and resolves the bytes really written; writes past the size at
//                           open are refused (ERR_INVALID_ARG_VALUE). finish() fsyncs and
//                           closes; close() abandons without fsync. Writes run one at a time.
//   __testPanic(message)    a native task that panics: rejects with ERR_INTERNAL (tests only).
//
// Every call is one native task on the threadpool and rejects with a
// ReflinkPoolError carrying code/errno/syscall/path/dest.
import { native } from './binding'
import { unwrap } from './outcome'
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
  private readonly writer: InstanceType<typeof native.ImportWriter>

  /** Use `openImportWriter`. */
  private constructor(readonly path: string) {
    this.writer = new native.ImportWriter(path)
  }

  static async open(path: string): Promise<ImportWriter> {
    validatePath('path', path)
    const w = new ImportWriter(path)
    await unwrap(w.writer.open())
    return w
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

async function hardlink(src: string, dst: string): Promise<void> {
  validatePath('src', src)
  validatePath('dst', dst)
  await unwrap(native.hardlink(src, dst))
}

async function rename(src: string, dst: string): Promise<void> {
  validatePath('src', src)
  validatePath('dst', dst)
  await unwrap(native.rename(src, dst))
}

async function remove(path: string): Promise<boolean> {
  validatePath('path', path)
  return unwrap(native.remove(path))
}

async function mkdir(path: string): Promise<void> {
  validatePath('path', path)
  await unwrap(native.mkdir(path))
}

async function writeFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  validatePath('path', path)
  if (typeof data !== 'string') validateBuffer('data', data)
  validateMode('mode', mode)
  const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)
  await unwrap(native.writeFile(path, buf, mode))
}

async function fsyncFile(path: string): Promise<void> {
  validatePath('path', path)
  await unwrap(native.fsyncFile(path))
}

async function fsyncDir(path: string): Promise<void> {
  validatePath('path', path)
  await unwrap(native.fsyncDir(path))
}

async function fsStats(dir: string): Promise<FsStats> {
  validatePath('dir', dir)
  return unwrap(native.fsStats(dir))
}

async function dataRuns(path: string): Promise<{ size: number; runs: DataRun[] }> {
  validatePath('path', path)
  return unwrap(native.dataRuns(path))
}

async function __testPanic(message = 'test panic'): Promise<never> {
  await unwrap(native.__testPanic(message))
  throw new Error('__testPanic resolved: the native panic was not raised')
}

export const internal = {
  hardlink,
  rename,
  remove,
  mkdir,
  writeFile,
  fsyncFile,
  fsyncDir,
  fsStats,
  dataRuns,
  openImportWriter: (path: string): Promise<ImportWriter> => ImportWriter.open(path),
  __testPanic,
} as const
