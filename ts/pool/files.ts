// The pool's view of the filesystem. Every file operation of the policy layer
// goes through here, so two rules hold everywhere:
// 1. Durable steps use the native primitives (one threadpool task per step:
//    syscall + fsync + directory fsync), never ad-hoc node:fs writes.
// 2. Nothing is done through a planted symlink: every directory between the
//    pool directory and the target must be a real directory (lstat, not stat),
//    and every image we open, clone, truncate or rename must be a regular file.
//    A violation is ERR_UNSAFE_PATH before anything changes on disk.
// The checks are lstat-then-act (not openat/O_NOFOLLOW), which defeats planted
// links but not an attacker racing us with write access to the pool directory.
import * as fs from 'node:fs'
import { dirname, relative, sep } from 'node:path'
import { promisify } from 'node:util'
import { copyFile, type CopyResult } from '../copy'
import { createSparseFile, resizeFile } from '../files'
import { updateLoopDevSizes } from '../loopdev'
import { isReflinkSupported } from '../probe'
import { fileUsage, type FileUsage } from '../usage'
import { internal, type FsStats, type DataRunBatch, type ExportReader } from '../internal'
import { poolError, hasCode } from './fail'

const lstatCb = promisify(fs.lstat)
const readdirCb = promisify(fs.readdir)
const readFileCb = promisify(fs.readFile) as (path: string, enc: 'utf8') => Promise<string>
const rmdirCb = promisify(fs.rmdir)

export type { CopyResult }

export interface CopyOptions {
  size?: number
  copyMtime?: boolean
  sparse?: 'auto' | 'always'
  signal?: AbortSignal
  onProgress?: (done: number, total: number) => void
}

const statCb = promisify(fs.stat)

/** stat that answers null for a missing path. */
export async function statOrNull(path: string): Promise<fs.Stats | null> {
  try {
    return await statCb(path)
  } catch (e) {
    if (hasCode(e, 'ENOENT', 'ENOTDIR')) return null
    throw e
  }
}

/** lstat that answers null for a missing path. */
export async function lstatOrNull(path: string): Promise<fs.Stats | null> {
  try {
    return await lstatCb(path)
  } catch (e) {
    if (hasCode(e, 'ENOENT', 'ENOTDIR')) return null
    throw e
  }
}

/** What a non-regular entry is, for messages: 'a directory', 'a FIFO', ... */
export function entryKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isSymbolicLink()) return 'a symlink'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  return 'a regular file'
}

export class PoolFiles {
  /** `root` is the pool directory (absolute, as the user gave it; it may itself be a symlink). */
  constructor(readonly root: string) {}

  private unsafe(path: string, what: string): Error {
    return poolError('ERR_UNSAFE_PATH', `${path} is ${what}, not something the pool created; refusing to use it`, { path })
  }

  /** The components of `path` below the root, or an error when `path` is not inside it. */
  private below(path: string): string[] {
    const rel = relative(this.root, path)
    if (rel === '' ) return []
    if (rel.startsWith('..') || rel.startsWith(sep)) throw this.unsafe(path, 'outside the pool directory')
    return rel.split(sep)
  }

  /**
   * Check that every existing component from the root down to `dir` is a real
   * directory. Returns false when some component is missing (nothing to look at).
   */
  async checkDir(dir: string): Promise<boolean> {
    const parts = this.below(dir)
    // The root itself may be a symlink (the user's choice of dirPath): follow it.
    const root = await statOrNull(this.root)
    if (!root) return false
    if (!root.isDirectory()) throw this.unsafe(this.root, 'not a directory')
    let cur = this.root
    for (const part of parts) {
      cur = cur + sep + part
      const st = await lstatOrNull(cur)
      if (!st) return false
      if (!st.isDirectory()) throw this.unsafe(cur, st.isSymbolicLink() ? 'a symlink' : 'not a directory')
    }
    return true
  }

  /** Create `dir` (and missing parents below the root) after checking the existing ones. */
  async ensureDir(dir: string): Promise<void> {
    if (await this.checkDir(dir)) return
    await internal.mkdir(dir)
    // mkdir -p follows symlinks; re-check that what exists now is what we meant.
    if (!(await this.checkDir(dir))) throw this.unsafe(dir, 'missing after mkdir')
  }

  /**
   * lstat an image inside the pool: null when missing, an error when it is
   * anything but a regular file (a symlink would lead outside the pool).
   */
  async image(path: string): Promise<fs.Stats | null> {
    const st = await lstatOrNull(path)
    if (st && !st.isFile()) throw this.unsafe(path, st.isSymbolicLink() ? 'a symlink' : 'not a regular file')
    return st
  }

  /** Check several images at once (see `image`). */
  async images(paths: string[]): Promise<(fs.Stats | null)[]> {
    return Promise.all(paths.map((p) => this.image(p)))
  }

  /** Entries of a directory inside the pool with their types; [] when it is missing. */
  async list(dir: string): Promise<fs.Dirent[]> {
    try {
      return await readdirCb(dir, { withFileTypes: true })
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return []
      throw e
    }
  }

  async readText(path: string): Promise<string | null> {
    try {
      return await readFileCb(path, 'utf8')
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return null
      throw e
    }
  }

  copy(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyResult> {
    return copyFile(src, dst, { reflink: 'auto', ...opts })
  }

  createSparse(path: string, size: number): Promise<void> {
    return createSparseFile(path, size)
  }

  resize(path: string, size: number): Promise<void> {
    return resizeFile(path, size)
  }

  updateLoopDevSizes(path: string): Promise<string[]> {
    return updateLoopDevSizes(path)
  }

  hardlink(src: string, dst: string): Promise<void> {
    return internal.hardlink(src, dst)
  }

  rename(src: string, dst: string): Promise<void> {
    return internal.rename(src, dst)
  }

  /** Durable unlink; resolves with whether the file existed. */
  remove(path: string): Promise<boolean> {
    return internal.remove(path)
  }

  fsyncFile(path: string): Promise<void> {
    return internal.fsyncFile(path)
  }

  /** Atomic durable write (temp + fsync + rename + dir fsync). */
  writeFile(path: string, data: string, mode = 0o600): Promise<void> {
    return internal.writeFile(path, data, mode)
  }

  /** rmdir when empty (ENOTEMPTY/ENOENT are fine), then fsync the parent. */
  async removeEmptyDir(dir: string): Promise<boolean> {
    try {
      await rmdirCb(dir)
    } catch (e) {
      if (hasCode(e, 'ENOENT', 'ENOTEMPTY', 'EEXIST')) return false
      throw e
    }
    await internal.fsyncDir(dirname(dir))
    return true
  }

  usage(path: string): Promise<FileUsage> {
    return fileUsage(path)
  }

  fsStats(dir: string): Promise<FsStats> {
    return internal.fsStats(dir)
  }

  /** At most `limit` data runs from `start` (bounded batches: never the whole map of a fragmented image). */
  dataRuns(path: string, batch?: { start?: number; limit?: number }): Promise<DataRunBatch> {
    return internal.dataRuns(path, batch)
  }

  /** A native reader of [start, end) of an image (a symlink is refused, not followed). */
  exportReader(path: string, range: { start?: number; end?: number }): Promise<ExportReader> {
    return internal.openExportReader(path, range)
  }

  isReflinkSupported(dir: string): Promise<boolean> {
    return isReflinkSupported(dir)
  }
}
