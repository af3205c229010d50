// The pool's view of the filesystem: the ONE boundary every file operation of
// the policy layer goes through (images, records, locks, sessions, markers,
// listings). It holds the pool's native directory handle (`PoolDir`, opened
// once at open) and names every file relative to it, so that:
// 1. Nothing is resolved by walking a path string again: the native layer
//    resolves each relative path beneath the handle with
//    openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) (or a per-component
//    O_NOFOLLOW walk) and acts with *at syscalls (docs/design.md §5). A symlink
//    anywhere below the root, or a FIFO/device/socket where a file is expected,
//    is ERR_UNSAFE_PATH before anything changes on disk.
// 2. The pool directory and the directories it holds are owned by this user
//    (or root) and not writable by group or others (ERR_UNSAFE_PERMISSIONS);
//    what the pool creates is 0700 (directories) and 0600 (files).
// 3. An image the pool writes through (dirty, precache, import) has one link
//    (`writableImage`; the native resize and import writer check it too).
// 4. Durable steps are native tasks (syscall + fsync + directory fsync).
// Callers pass absolute paths inside the pool (as names.ts builds them); a
// path outside the root is refused here, before any syscall.
// No other module of ts/pool, ts/volume or ts/store imports the binding, its
// task wiring (native-control.ts) or ts/internal.ts (docs/design.md §1): the
// batch and send natives are called from here too.
import { dirname, relative, resolve, sep, isAbsolute } from 'node:path'
import { lstat, realpath, stat } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { native, type NativeSendHeader } from '../binding'
import { runCopy, type CopyResult } from '../copy'
import { unwrap, unwrapOrNull } from '../outcome'
import type { FileUsage } from '../usage'
import { ExportReader, ImportWriter, type FsStats, type DataRunBatch } from '../internal'
import { runControlled, type CancelToken } from '../native-control'
import { poolError } from './fail'
import { isReflinkPoolError, throwIfAborted } from '../errors'

export type { CopyResult, CancelToken, NativeSendHeader, ExportReader }
export type { ImportPosition } from '../internal'
export { cancelOn } from '../native-control'
export type SendStream = InstanceType<typeof native.SendStream>

/** How a native task over many volumes is run: its name (in a warning), its signal and progress. */
export interface TaskControl {
  what: string
  signal?: AbortSignal
  onProgress?: (done: number, total: number) => void
}

/** Bytes to read of a send stream before parseSendHeader: the longest header. */
export function sendHeaderLength(): number {
  return native.sendHeaderLength()
}

/** A send stream's header decoded (and, under a key, authenticated) once: its `fields`, and the handle a receiver goes on from. */
export type DecodedSendHeader = InstanceType<typeof native.DecodedSendHeader>

/** The header at the start of `first` (under a key, authenticated): decoded once, before anything is locked or written. */
export function parseSendHeader(first: Buffer, key: Buffer | null): Promise<DecodedSendHeader> {
  return unwrap(Promise.resolve(native.parseSendHeader(first.subarray(0, native.sendHeaderLength()), key)))
}

export interface CopyOptions {
  size?: number
  copyMtime?: boolean
  sparse?: 'auto' | 'always'
  reflink?: 'auto' | 'always'
  signal?: AbortSignal
  onProgress?: (done: number, total: number) => void
}

/** What the pool knows of a file (lstat: never followed). */
export interface FileInfo {
  size: number
  mtimeMs: number
  /** mtime in ns, exact. */
  mtimeNs: bigint
  nlink: number
  /** Identity only (compare dev and ino together). */
  dev: number
  ino: number
}

/** One directory entry, never followed. */
export class DirEntry {
  constructor(
    readonly name: string,
    readonly kind: 'file' | 'directory' | 'symlink' | 'other',
  ) {}

  isFile(): boolean {
    return this.kind === 'file'
  }

  isDirectory(): boolean {
    return this.kind === 'directory'
  }
}

/** The native listing's kind letters. */
const KINDS: Record<string, DirEntry['kind']> = { f: 'file', d: 'directory', l: 'symlink', o: 'other' }

/** An empty, `.` or `..` path segment: such a path is not plainly under the root's prefix. */
const ODD_SEGMENT = /(^|\/)(\.\.?)?(\/|$)/

/** Default bound of `readText`: a record, the config or an owner file is a few hundred bytes. */
const MAX_TEXT_BYTES = 1 << 20

export class PoolFiles {
  /** Whether the pool's filesystem clones files: unknown (null) until a copy inside the pool shows it. */
  private reflinks: boolean | null = null
  /** The normalized root and a slash: what a path the pool joined under it starts with. */
  private readonly prefix: string

  private constructor(
    /** The pool directory (absolute, as the user gave it; it may itself be a symlink, followed once at open). */
    readonly root: string,
    private readonly dir: InstanceType<typeof native.PoolDir>,
  ) {
    this.prefix = resolve(root).replace(/\/?$/, '/')
  }

  /**
   * Open the pool directory `root` once (creating it, mode 0700, when `create`)
   * and check its ownership and mode. Everything afterwards is relative to it.
   */
  static async open(root: string, create: boolean): Promise<PoolFiles> {
    const dir = new native.PoolDir(root)
    await unwrap(dir.open(create))
    return new PoolFiles(root, dir)
  }

  private unsafe(path: string, what: string): Error {
    return poolError('ERR_UNSAFE_PATH', `${path} is ${what}, not something the pool created; refusing to use it`, { path })
  }

  /**
   * `path` relative to the root ('' for the root itself); an error when it is not inside.
   * A path the pool joined itself (the root, then plain names) is a slice: a batch asks
   * for thousands (a remove batch, each volume's side files); anything else, `relative`.
   */
  rel(path: string): string {
    if (path.startsWith(this.prefix)) {
      const rest = path.slice(this.prefix.length)
      if (!ODD_SEGMENT.test(rest)) return rest
    }
    const rel = relative(this.root, path)
    if (rel.startsWith('..') || isAbsolute(rel)) throw this.unsafe(path, 'outside the pool directory')
    return rel.split(sep).join('/')
  }

  /** Whether the directory `dir` exists (a real directory, reached without symlinks); false when missing. */
  async checkDir(dir: string): Promise<boolean> {
    return this.rel(dir) === '' || (await this.directory(dir)) !== null
  }

  /** Create `dir` and its missing parents below the root (mode 0700 whatever the umask). */
  async ensureDir(dir: string): Promise<void> {
    await unwrap(native.mkdirAt(this.dir, this.rel(dir)))
  }

  /** lstat of `path` as `kind`: null when missing, ERR_UNSAFE_PATH when it is something else (a symlink is never followed). */
  private async stat(path: string, kind: 'file' | 'directory'): Promise<FileInfo | null> {
    const st = await unwrapOrNull(native.statAt(this.dir, this.rel(path)))
    if (st && st.kind !== kind) throw this.unsafe(path, st.kind === 'symlink' ? 'a symlink' : `not a ${kind === 'file' ? 'regular file' : kind}`)
    return st && { size: st.size, mtimeMs: st.mtimeMs, mtimeNs: BigInt(st.mtimeNs), nlink: st.nlink, dev: st.dev, ino: st.ino }
  }

  /** An image inside the pool: null when missing, an error when it is anything but a regular file. */
  image(path: string): Promise<FileInfo | null> {
    return this.stat(path, 'file')
  }

  /** A directory inside the pool (lstat): null when missing, an error when it is anything else. */
  directory(path: string): Promise<FileInfo | null> {
    return this.stat(path, 'directory')
  }

  /** Check several images at once (see `image`). */
  async images(paths: string[]): Promise<(FileInfo | null)[]> {
    return Promise.all(paths.map((p) => this.image(p)))
  }

  /**
   * An image the pool will write through (dirty, precache, import): like
   * `image`, and a file with more than one link (a hardlink planted to a file
   * outside the pool) is ERR_UNSAFE_PATH.
   */
  async writableImage(path: string): Promise<FileInfo | null> {
    const st = await this.image(path)
    if (st && st.nlink !== 1) throw this.unsafe(path, `a file with ${st.nlink} hard links`)
    return st
  }

  /** Entries of a directory inside the pool with their kinds (never followed), sorted by name; [] when it is missing. */
  async list(dir: string): Promise<DirEntry[]> {
    const ents = await unwrapOrNull(native.readDirAt(this.dir, this.rel(dir)))
    return ents ? ents.names.map((name, i) => new DirEntry(name, KINDS[ents.kinds[i]])) : []
  }

  /** The names in a directory inside the pool, sorted (as fs.readdir); [] when it is missing. */
  async names(dir: string): Promise<string[]> {
    return (await unwrapOrNull(native.readDirAt(this.dir, this.rel(dir))))?.names ?? []
  }

  /**
   * A regular file's text (records, config, owner files, the records cache),
   * never through a symlink; null when missing. A file larger than `maxBytes`
   * is ERR_INVALID_ARG_VALUE (nothing the pool wrote is that large).
   */
  async readText(path: string, maxBytes = MAX_TEXT_BYTES): Promise<string | null> {
    return unwrapOrNull(native.readFileAt(this.dir, this.rel(path), maxBytes))
  }

  /** An owner file's (session file, import marker) owner and age; null when it is missing. */
  async readOwner(path: string): Promise<{ owner: string; mtimeMs: number } | null> {
    const st = await this.image(path)
    const owner = st && (await this.readText(path))
    return st && owner !== null ? { owner, mtimeMs: st.mtimeMs } : null
  }

  /** Durable copy of `src` (a file of the pool `srcFiles`, default this one) to `dst` in this pool. */
  async copy(src: string, dst: string, opts: CopyOptions = {}, srcFiles: PoolFiles = this): Promise<CopyResult> {
    const [from, to] = [srcFiles.rel(src), this.rel(dst)]
    const { size, copyMtime = false, sparse, reflink = 'auto', signal, onProgress } = opts
    const result = await runCopy((token, progress) => native.copyFileAt(srcFiles.dir, from, this.dir, to, { reflink, size, copyMtime, sparse }, token, progress), signal, onProgress, reflink === 'always')
    if (srcFiles === this && reflink === 'auto' && sparse !== 'always') this.reflinks = result.method === 'reflink'
    return result
  }

  /**
   * A durable copy of the committed image `src` at `dst` (a revision) that moves
   * no data: a hardlink while `src` has no other name (two names of one inode
   * must stay within one volume's committed images, never be shared with another
   * volume's or left after a cut commit), else a clone, else a copy
   * (docs/design.md §3). The hardlink comes first on every filesystem: it costs
   * the same whatever the image's extent count, a clone does not.
   */
  async keepImage(src: string, dst: string, opts: Pick<CopyOptions, 'signal'> = {}): Promise<CopyResult['method'] | 'hardlink'> {
    if ((await this.image(src))?.nlink === 1) {
      await this.hardlink(src, dst)
      return 'hardlink'
    }
    throwIfAborted(opts.signal)
    if (await this.cloneIfPossible(src, dst, opts)) return 'reflink'
    throwIfAborted(opts.signal)
    return (await this.copy(src, dst, opts)).method
  }

  /**
   * A durable clone of `src` at `dst` when the pool's filesystem can make one;
   * false, and nothing made, when it cannot. For copies that are only worth
   * their cost as clones (the precache, docs/design.md §3).
   */
  async cloneIfPossible(src: string, dst: string, opts: CopyOptions = {}): Promise<boolean> {
    if (this.reflinks === false) return false
    try {
      await this.copy(src, dst, { ...opts, reflink: 'always' })
      this.reflinks = true
      return true
    } catch (e) {
      if (!isReflinkPoolError(e, 'ERR_REFLINK_UNSUPPORTED')) throw e
      this.reflinks = false
      return false
    }
  }

  /** Durable copy of the file `src` outside the pool (an ordinary path) to `dst` in this pool. */
  copyIn(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyResult> {
    const to = this.rel(dst)
    const { size, copyMtime = false, sparse, signal, onProgress } = opts
    return runCopy((token, progress) => native.copyFileFromPath(src, this.dir, to, { reflink: 'auto', size, copyMtime, sparse }, token, progress), signal, onProgress)
  }

  /** Durable copy of `src` in this pool to the file `dst` outside it (an ordinary path). */
  copyOut(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyResult> {
    const from = this.rel(src)
    const { size, copyMtime = false, sparse, signal, onProgress } = opts
    return runCopy((token, progress) => native.copyFileToPath(this.dir, from, dst, { reflink: 'auto', size, copyMtime, sparse }, token, progress), signal, onProgress)
  }

  async createSparse(path: string, size: number): Promise<void> {
    await unwrap(native.createSparseFileAt(this.dir, this.rel(path), size))
  }

  /** Resize a writable image in place (refused unless a regular file with one link). */
  async resize(path: string, size: number): Promise<void> {
    await unwrap(native.resizeFileAt(this.dir, this.rel(path), size))
  }

  updateLoopDevSizes(path: string): Promise<string[]> {
    return unwrap(native.updateLoopDevSizesAt(this.dir, this.rel(path)))
  }

  async hardlink(src: string, dst: string): Promise<void> {
    await unwrap(native.hardlinkAt(this.dir, this.rel(src), this.rel(dst)))
  }

  /**
   * Durable rename. When `src` is already a second name of `dst` (a commit cut
   * between its revision's hardlink and its rename, docs/design.md §4), rename(2)
   * does nothing and succeeds; `src` is then removed, so it is gone either way.
   */
  async rename(src: string, dst: string): Promise<void> {
    await unwrap(native.renameAt(this.dir, this.rel(src), this.rel(dst)))
    const from = await this.stat(src, 'file').catch(() => null)
    const to = from && (await this.stat(dst, 'file').catch(() => null))
    if (from && to && from.dev === to.dev && from.ino === to.ino) await this.remove(src)
  }

  /** Durable unlink; resolves with whether the file existed. */
  remove(path: string): Promise<boolean> {
    return unwrap(native.removeAt(this.dir, this.rel(path)))
  }

  async fsyncFile(path: string): Promise<void> {
    await unwrap(native.fsyncFileAt(this.dir, this.rel(path)))
  }

  /** Atomic durable write (temp + fsync + rename + dir fsync), parents created. */
  async writeFile(path: string, data: string, mode = 0o600): Promise<void> {
    await unwrap(native.writeFileAt(this.dir, this.rel(path), Buffer.from(data), mode))
  }

  /** rmdir when empty, then fsync the parent; false when missing or not empty. */
  removeEmptyDir(dir: string): Promise<boolean> {
    return unwrap(native.removeEmptyDirAt(this.dir, this.rel(dir)))
  }

  usage(path: string): Promise<FileUsage> {
    return unwrap(native.fileUsageAt(this.dir, this.rel(path)))
  }

  /** statvfs of the pool's filesystem, through the handle (ENOENT once the directory is gone). */
  fsStats(): Promise<FsStats> {
    return unwrap(native.fsStatsAt(this.dir, ''))
  }

  /** Drop the directory handle (operations already running keep theirs). */
  close(): void {
    this.dir.close()
  }

  /** At most `limit` data runs from `start` (bounded batches: never the whole map of a fragmented image). */
  async dataRuns(path: string, batch: { start?: number; limit?: number } = {}): Promise<DataRunBatch> {
    const r = await unwrap(native.dataRunsAt(this.dir, this.rel(path), batch.start, batch.limit))
    return { size: r.size, runs: r.runs, next: r.next ?? undefined }
  }

  /** A native reader of [start, end) of the image `path` (a regular file, never followed). */
  exportReader(path: string, range: { start?: number; end?: number }): Promise<ExportReader> {
    return ExportReader.open(this.dir, this.rel(path), range)
  }

  /** Whether the pool directory can hold reflinks (probed with unnamed temp files in it). */
  isReflinkSupported(): Promise<boolean> {
    return unwrap(native.isReflinkSupportedAt(this.dir, ''))
  }

  /** Whether copies in the pool are reflinks: what the last copy showed, else probed once (a failed probe, e.g. ENOSPC, says no). */
  async reflinkCapable(): Promise<boolean> {
    this.reflinks ??= await this.isReflinkSupported().catch(() => false)
    return this.reflinks
  }

  /** What removing the files `removed` would give back while the files `others` stay (docs/design.md §7). */
  async freedBytes(removed: string[], others: string[]): Promise<{ bytes: number; files: number }> {
    return unwrap(native.freedBytesAt(this.dir, removed.map((p) => this.rel(p)), others.map((p) => this.rel(p))))
  }

  /** A writer into the existing import file `path` (a regular file with one link). */
  openImportWriter(path: string): Promise<ImportWriter> {
    return ImportWriter.open(this.dir, this.rel(path))
  }

  // The batch natives (docs/design.md §7): one native task over many volumes each,
  // on the pool's directory handle, their arguments built by the pool's batch.ts and remove.ts.
  makeVolumes(args: Parameters<typeof native.makeVolumes>[1], c: TaskControl) {
    return runControlled(c.what, c.signal, c.onProgress, (token, progress) => native.makeVolumes(this.dir, args, token, progress))
  }

  startByClone(args: Parameters<typeof native.startByClone>[1], c: TaskControl) {
    return runControlled(c.what, c.signal, c.onProgress, (token, progress) => native.startByClone(this.dir, args, token, progress))
  }

  removeVolumeFiles(args: Parameters<typeof native.removeVolumeFiles>[1], c: TaskControl) {
    return runControlled(c.what, c.signal, c.onProgress, (token, progress) => native.removeVolumeFiles(this.dir, args, token, progress))
  }

  removeVolumes(args: Parameters<typeof native.removeVolumes>[1], c: TaskControl) {
    return runControlled(c.what, c.signal, c.onProgress, (token, progress) => native.removeVolumes(this.dir, args, token, progress))
  }

  /** The image hash of the committed image `path` (docs/design.md §8), reading only its data runs. */
  hashImage(path: string, cancel: CancelToken): Promise<string> {
    return unwrap(native.hashImage(this.dir, this.rel(path), cancel))
  }

  /** A sender of the committed image `target` (against `base`), not opened yet (docs/design.md §8). */
  sendStream(target: string, base: string | null, header: NativeSendHeader, key: Buffer | null, cancel: CancelToken): SendStream {
    return new native.SendStream(this.dir, this.rel(target), base === null ? null : this.rel(base), header, key, cancel)
  }

  /** A receiver of a stream whose header parseSendHeader decoded into a file of its own beside the import name `path`, made from `base` (or sparse) by open(); not opened yet. `overExisting`: a full stream over a clone of `base` writes only the blocks that differ (receive --like). */
  receiveStream(path: string, base: string | null, header: DecodedSendHeader, overExisting: boolean, cancel: CancelToken): InstanceType<typeof native.ReceiveStream> {
    return new native.ReceiveStream(this.dir, this.rel(path), base === null ? null : this.rel(base), header, overExisting, cancel)
  }

  /** The flock(2) lock file `path` (native `VolumeLock`; not yet taken). */
  lockFile(path: string): InstanceType<typeof native.VolumeLock> {
    return new native.VolumeLock(this.dir, this.rel(path))
  }
}

/** stat (or lstat) of a path outside the pool, given by the caller; null when missing. */
export async function outsideStat(path: string, follow: boolean): Promise<Stats | null> {
  try {
    return await (follow ? stat(path) : lstat(path))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw e
  }
}

/**
 * Whether the path `path` (existing or not) names an entry inside the directory
 * `root`, symlinks on the way followed: compared by device and inode, so no
 * other spelling of the pool's directory gets past. A destination there would
 * put a file the pool did not make among (or over) its own.
 */
export async function isInside(root: string, path: string): Promise<boolean> {
  const top = await stat(root)
  let dir: string
  try {
    dir = await realpath(dirname(path))
  } catch {
    return false // no parent directory: the write fails on its own, outside
  }
  for (;;) {
    const st = await stat(dir)
    if (st.dev === top.dev && st.ino === top.ino) return true
    const up = dirname(dir)
    if (up === dir) return false
    dir = up
  }
}
