// ReflinkVolume: the file-reflink lifecycle of one volume (docs/design.md §3).
//
// Kinds: S = saveOnStop, SoS = snapOnStart. volatile = !S & !SoS,
// snapshot = SoS & !S, origin = S & !SoS, origin-snapshot = S & SoS,
// snapshots disabled (SD) = revisionsToKeep == -1 & S & !SoS.
//
// Every mutating call runs under the volume's lock (lock.ts) and re-reads the
// volume's record first, so another process's resize or removal is seen.
// Preconditions (and the planted-symlink checks of files.ts) are all checked
// before the first change, so a refused call changes nothing on disk. A volume
// whose record is broken (store.ts) refuses every call with ERR_VOLUME_BROKEN.
import { basename, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import {
  MAX_REVISION,
  volumePaths,
  revisionFileName,
  revisionTimestamp,
  lockFileName,
  type VolumePaths,
} from './names'
import { poolError, hasCode } from './fail'
import { abortError, throwIfAborted } from '../errors'
import { writeOwnerMarker } from './owner'
import {
  optional, validateBoolean, validateFunction, validateObject, validateOneOf, validateOptions, validatePath, validateRevisionsToKeep, validateSignal, validateSize,
} from '../validate'
import { exportStream, pumpImport, writeImport } from './stream'
import { entryKind, outsideStat } from './files'
import { sendVolume, receiveVolume, type SendOptions, type ReceiveOptions, type ReceiveReport, type SendAccess } from './send'
import { VolumeStates } from './states'
import { volumeFiles } from './images'
import { isBroken, type LoadedRecord } from './store'
import { volumeFootprint, type VolumeFootprint } from './footprint'
import type { PoolContext } from './context'
import type { FileInfo } from './files'
import type {
  VolumeRecord,
  VolumeUsage,
  StopOptions,
  ResizeOptions,
  AbortOptions,
  ImportStreamOptions,
  ImportFileOptions,
  ExportFileOptions,
  ExportStreamOptions,
  CopyReport,
  VolumeConfigOptions,
} from './types'

type ProgressFn = (doneBytes: number, totalBytes: number) => void
import type { ReflinkPool } from './pool'

interface Revision {
  rev: number
  timestamp: string
  path: string
}

/** What guard() found of a volume's four single-file images (null: missing). */
interface VolumeImages {
  clean: FileInfo | null
  dirty: FileInfo | null
  precache: FileInfo | null
  import: FileInfo | null
}

/**
 * One volume of a pool (docs/design.md §3): its images, lifecycle (start,
 * stop, revert, resize), data in and out, and state. Made by the pool
 * (`createVolume`, `loadVolume`, `listVolumes`), never constructed directly.
 */
export class ReflinkVolume {
  private record: VolumeRecord
  /** Why the record is unusable (a rule it broke, never its contents), or null. */
  private brokenReason: string | null = null

  /** @internal */
  constructor(
    private readonly ctx: PoolContext,
    rec: LoadedRecord,
  ) {
    this.record = this.adopt(rec)
  }

  /** @internal take a freshly read record (or the news that it is broken). */
  reload(rec: LoadedRecord): void {
    this.record = this.adopt(rec)
  }

  private adopt(rec: LoadedRecord): VolumeRecord {
    if (!isBroken(rec)) {
      this.brokenReason = null
      if (!rec.creating) return rec
      const { creating: _creating, ...clean } = rec
      return clean
    }
    this.brokenReason = rec.broken
    // Inert stand-in values: every call is refused while the record is broken.
    return { vid: rec.vid, name: basename(rec.vid), rw: false, saveOnStop: false, snapOnStart: false, source: null, size: 0, revisionsToKeep: 0 }
  }

  /** Why this volume's record cannot be used (then every call rejects with ERR_VOLUME_BROKEN), or null. */
  get broken(): string | null {
    return this.brokenReason
  }

  /** The pool the volume belongs to. */
  get pool(): ReflinkPool {
    return this.ctx.pool
  }
  /** `<appvms|vm-templates>/<vm>/<name>`. */
  get vid(): string {
    return this.record.vid
  }
  /** The vid's last component. */
  get name(): string {
    return this.record.name
  }
  /** Whether the VM may write it. */
  get rw(): boolean {
    return this.record.rw
  }
  /** Commit the running image on stop (origin kinds). */
  get saveOnStop(): boolean {
    return this.record.saveOnStop
  }
  /** Start from a fresh reflink of the source (snapshot kinds). */
  get snapOnStart(): boolean {
    return this.record.snapOnStart
  }
  /** The vid of the source volume (snapOnStart volumes), else null. */
  get source(): string | null {
    return this.record.source
  }
  /** Revisions kept on commit: copied from the pool's default at creation, changed only by setConfig. */
  get revisionsToKeep(): number {
    return this.record.revisionsToKeep
  }
  /** Whether a volatile volume's contents should be treated as ephemeral (pool's ephemeralVolatile). */
  get ephemeral(): boolean {
    return !this.saveOnStop && !this.snapOnStart && this.ctx.pool.ephemeralVolatile
  }
  /** The dirty image: what a running VM uses. */
  get path(): string {
    return this.paths.dirty
  }
  /** The persisted configuration of this volume (a copy). */
  get config(): VolumeRecord {
    return { ...this.record }
  }

  private get paths(): VolumePaths {
    return volumePaths(this.ctx.dirPath, this.record.vid)
  }
  /** Snapshots disabled: the clean image is renamed to dirty and back, no revisions, no precache. */
  private get snapshotsDisabled(): boolean {
    return this.revisionsToKeep === -1 && this.saveOnStop && !this.snapOnStart
  }
  private get usesPrecache(): boolean {
    return this.saveOnStop && !this.snapOnStart && !this.snapshotsDisabled
  }

  // ---- lifecycle -------------------------------------------------------

  /** Remove every image of this (registered) volume; S & !SoS: a sparse clean image of `size` and its precache. */
  async create(): Promise<this> {
    await this.locked(() => this.createFiles())
    return this
  }

  /** @internal the body of create(), also run by pool.createVolume under the same lock. */
  async createFiles(): Promise<void> {
    const p = this.paths
    await this.guard()
    await this.removeImages('all')
    if (this.saveOnStop && !this.snapOnStart) {
      await this.ctx.files.ensureDir(p.dir)
      await this.ctx.files.createSparse(p.clean, this.record.size)
      if (this.usesPrecache) await this.refreshPrecache()
    }
  }

  /** The image the volume needs to start exists; else ERR_MISSING_IMAGE naming it. */
  async verify(): Promise<true> {
    this.usable()
    const p = this.paths
    let needed: string | null = null
    if (this.snapOnStart) needed = this.sourcePaths().clean
    else if (this.saveOnStop) needed = p.clean
    if (needed === null) return true
    const dir = needed === p.clean ? p.dir : this.sourcePaths().dir
    if ((await this.ctx.files.checkDir(dir)) && (await this.ctx.files.image(needed))) return true
    // Snapshots disabled and running (or crashed while running): the clean image lives on as dirty.
    if (needed === p.clean && this.snapshotsDisabled && (await this.ctx.files.image(p.dirty))) return true
    throw this.missing(needed)
  }

  /** Prepare the dirty image and return its path (docs/design.md §3, start). */
  async start(options?: AbortOptions): Promise<string> {
    const signal = optional<AbortSignal>('options.signal', validateOptions('options', options, ['signal']).signal, validateSignal)
    throwIfAborted(signal)
    return this.locked(async () => {
      const p = this.paths
      const files = this.ctx.files
      const { clean, dirty } = await this.guard()
      throwIfAborted(signal)
      if (this.saveOnStop && dirty) {
        // Crash leftover of a running volume: reuse it unchanged (only if it has one link).
        await files.writableImage(p.dirty)
        await this.removeImages('incomplete')
        return p.dirty
      }
      if (this.snapOnStart) {
        const src = this.sourcePaths()
        if (!(await files.checkDir(src.dir)) || !(await files.image(src.clean))) throw this.missing(src.clean)
        await this.removeImages('incomplete')
        await files.ensureDir(p.dir)
        await files.remove(p.clean)
        await this.linkSourceImage(src.clean, p.clean)
        try {
          await files.copy(p.clean, p.dirty, { signal })
        } catch (e) {
          await files.remove(p.clean) // a stopped snapshot has no image of its own
          throw e
        }
      } else if (this.saveOnStop) {
        if (!clean) throw this.missing(p.clean)
        await this.removeImages('incomplete')
        if (this.snapshotsDisabled) {
          await this.pruneRevisions(0)
          await files.remove(p.precache)
          await files.rename(p.clean, p.dirty)
        } else {
          await this.startFromPrecache(clean, signal)
        }
      } else {
        await this.removeImages('incomplete')
        await files.ensureDir(p.dir)
        await files.createSparse(p.dirty, this.record.size)
      }
      return p.dirty
    })
  }

  /**
   * Hardlink the source's clean image. The source is not locked (as in Qubes), so
   * its commit may rename a new image over the name while link(2) runs: the kernel
   * then refuses the old, now nameless inode with ENOENT. The name still exists
   * (holding the newer commit), so link again; ENOENT with no image is a real miss.
   */
  private async linkSourceImage(srcClean: string, clean: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.files.hardlink(srcClean, clean)
      } catch (e) {
        if (!hasCode(e, 'ENOENT') || attempt >= 5) throw e
        if (!(await this.ctx.files.image(srcClean))) throw this.missing(srcClean)
      }
    }
  }

  /**
   * Rename a fresh precache to dirty; a stale one (size or mtime differs from
   * clean) is discarded, and so is one with more than one link (a hardlink
   * would make the VM write into another file).
   */
  private async startFromPrecache(clean: FileInfo, signal?: AbortSignal): Promise<void> {
    const p = this.paths
    const files = this.ctx.files
    const pre = await files.image(p.precache)
    if (pre && pre.nlink === 1 && pre.size === clean.size && pre.mtimeMs === clean.mtimeMs) {
      try {
        await files.rename(p.precache, p.dirty)
        return
      } catch (e) {
        if (!hasCode(e, 'ENOENT')) throw e
      }
    } else if (pre) {
      await files.remove(p.precache)
    }
    await files.copy(p.clean, p.dirty, { signal })
  }

  /** Idempotent. S: commit the dirty image (or drop it with `discard`); others: remove their images. */
  async stop(options?: StopOptions): Promise<this> {
    const o = validateOptions('options', options, ['discard', 'signal'])
    const discard = optional<boolean>('options.discard', o.discard, validateBoolean) ?? false
    const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
    throwIfAborted(signal)
    await this.locked(async () => {
      const p = this.paths
      const files = this.ctx.files
      const { dirty } = await this.guard()
      throwIfAborted(signal)
      if (this.saveOnStop) {
        if (!dirty) return
        if (discard) {
          if (this.snapshotsDisabled) {
            throw poolError(
              'ERR_INVALID_ARG_VALUE',
              `Cannot discard ${this.vid}: snapshots are disabled (revisionsToKeep -1), so the dirty image is its only copy`,
              { vid: this.vid, path: p.dirty },
            )
          }
          await files.remove(p.dirty)
          return
        }
        await files.writableImage(p.dirty) // a hardlinked dirty image is never committed
        await this.commit(p.dirty, signal)
        return
      }
      if (!this.snapOnStart && dirty && dirty.size !== this.record.size) {
        // A volatile volume resized while running keeps its new size.
        await this.persist({ ...this.record, size: dirty.size })
      }
      await files.remove(p.dirty)
      await files.remove(p.clean)
    })
    return this
  }

  /**
   * Make `from` the new clean image: revision of the old one, prune, fsync, rename, refresh precache.
   * `signal` can stop it only during the revision copy (nothing changed yet); after that it completes.
   */
  private async commit(from: string, signal?: AbortSignal): Promise<void> {
    const p = this.paths
    const files = this.ctx.files
    if (this.snapshotsDisabled) {
      await files.fsyncFile(from)
      await files.rename(from, p.clean)
      return
    }
    await this.addRevision(signal)
    await this.pruneRevisions(this.revisionsToKeep)
    await files.fsyncFile(from)
    await this.replaceClean(() => files.rename(from, p.clean))
  }

  /** Put a new clean image in place with `write`; the precache of the old one goes first, a fresh one follows. */
  private async replaceClean(write: () => Promise<unknown>): Promise<void> {
    if (this.usesPrecache) await this.ctx.files.remove(this.paths.precache)
    await write()
    if (this.usesPrecache) await this.refreshPrecache()
  }

  /** A clone of the clean image to start from; none where the filesystem cannot clone (a full copy would double each commit to save one at start). */
  private async refreshPrecache(): Promise<void> {
    await this.ctx.files.cloneIfPossible(this.paths.clean, this.paths.precache, { copyMtime: true })
  }

  /** Keep the current clean image as revision max+1 (a clone, else a hardlink), stamped with its mtime (UTC). */
  private async addRevision(signal?: AbortSignal): Promise<void> {
    if (this.revisionsToKeep <= 0) return
    const p = this.paths
    const clean = await this.ctx.files.image(p.clean)
    if (!clean) return
    const revs = await this.revisionList()
    const next = (revs.at(-1)?.rev ?? 0) + 1
    if (next > MAX_REVISION) {
      throw poolError('ERR_OUT_OF_RANGE', `Volume ${this.vid} has used every revision number up to ${MAX_REVISION}; remove or renumber its revisions`, { vid: this.vid })
    }
    const name = revisionFileName(p.base, next, revisionTimestamp(clean.mtimeMs))
    await this.ctx.files.keepImage(p.clean, join(p.dir, name), { signal })
    // The revision holds the clean image's bytes: it keeps its identity (docs/design.md §8).
    await this.states.carry(p.clean, join(p.dir, name))
  }

  /** Delete all but the newest `keep` revisions (keep <= 0: all). */
  private async pruneRevisions(keep: number): Promise<void> {
    const revs = await this.revisionList()
    for (const r of revs.slice(0, Math.max(0, revs.length - Math.max(0, keep)))) {
      await this.ctx.files.remove(r.path)
    }
  }

  /**
   * Revisions of this volume, oldest first. A revision name that is not a
   * regular file is refused. Revision-shaped names with a number above
   * MAX_REVISION are left out (and listed by strayRevisions), so they never
   * hide the others or stop pruning.
   */
  private async revisionList(): Promise<Revision[]> {
    const out: Revision[] = []
    for (const { path, parsed } of await volumeFiles(this.ctx, this.vid)) {
      if (parsed.temp || parsed.kind !== 'revision' || parsed.rev === undefined) continue
      await this.ctx.files.image(path)
      out.push({ rev: parsed.rev, timestamp: parsed.timestamp!, path })
    }
    return out.sort((a, b) => a.rev - b.rev)
  }

  /**
   * Files named as revisions of this volume whose number is out of range
   * (above 2^53 - 2): not made by the pool, so never counted, pruned, reverted
   * to or removed; reported here so they can be moved away.
   */
  async strayRevisions(): Promise<string[]> {
    this.usable()
    return (await volumeFiles(this.ctx, this.vid)).filter((f) => !f.parsed.temp && f.parsed.outOfRange).map((f) => f.path)
  }

  /** Replace the clean image with revision `rev` (default newest); the current one becomes a new revision. */
  async revert(rev?: number | string, options?: AbortOptions): Promise<this> {
    const signal = optional<AbortSignal>('options.signal', validateOptions('options', options, ['signal']).signal, validateSignal)
    throwIfAborted(signal)
    await this.locked(async () => {
      const p = this.paths
      const { dirty } = await this.guard()
      if (this.saveOnStop && dirty) {
        throw poolError('ERR_VOLUME_DIRTY', `Cannot revert ${this.vid}: it is not cleanly stopped (${p.dirty} exists)`, {
          vid: this.vid,
          path: p.dirty,
        })
      }
      const revs = await this.revisionList()
      const wanted = rev === undefined ? undefined : String(rev)
      const chosen = wanted === undefined ? revs.at(-1) : revs.find((r) => String(r.rev) === wanted)
      if (!chosen) {
        throw poolError(
          'ERR_REVISION_NOT_FOUND',
          wanted === undefined ? `Volume ${this.vid} has no revisions` : `Volume ${this.vid} has no revision ${JSON.stringify(rev)}`,
          { vid: this.vid },
        )
      }
      throwIfAborted(signal)
      await this.addRevision(signal) // the signal stops the copy; past it, the revert completes
      await this.replaceClean(() => this.ctx.files.rename(chosen.path, p.clean))
    })
    return this
  }

  /** Running: resize dirty in place (+ loop devices). Stopped S & !SoS: a new clean inode. Else nominal. */
  async resize(size: number, options?: ResizeOptions): Promise<this> {
    validateSize('size', size)
    const o = validateOptions('options', options, ['allowShrink', 'signal'])
    const allowShrink = optional<boolean>('options.allowShrink', o.allowShrink, validateBoolean) ?? false
    const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
    throwIfAborted(signal)
    await this.locked(async () => {
      const p = this.paths
      const files = this.ctx.files
      if (!this.rw) throw poolError('ERR_VOLUME_READ_ONLY', `Cannot resize ${this.vid}: it is read-only`, { vid: this.vid })
      const { clean, dirty } = await this.guard()
      const current = dirty?.size ?? clean?.size ?? this.record.size
      if (size < current && !allowShrink) {
        throw poolError('ERR_SHRINK_REFUSED', `Refusing to shrink ${this.vid} from ${current} to ${size} bytes without { allowShrink: true }`, {
          vid: this.vid,
        })
      }
      throwIfAborted(signal)
      if (dirty) {
        await files.resize(p.dirty, size)
        await files.updateLoopDevSizes(p.dirty)
      } else if (this.saveOnStop && !this.snapOnStart) {
        if (!clean) throw this.missing(p.clean)
        // Never truncate the committed inode in place: a reader of the exported path keeps the old data.
        try {
          await this.replaceClean(() => files.copy(p.clean, p.clean, { size, signal }))
        } catch (e) {
          // An aborted copy left the clean image as it was; put its precache back (no signal: it must finish).
          if (signal?.aborted && this.usesPrecache) await this.refreshPrecache()
          throw e
        }
      }
      if (this.record.size !== size) await this.persist({ ...this.record, size })
    })
    return this
  }

  // ---- data path -------------------------------------------------------

  /** A path to the committed data (S only). Commits rename a new inode over it, so an open reader keeps its data. */
  async export(): Promise<string> {
    this.usable()
    this.requireSaveOnStop('export')
    const p = this.paths
    await this.ctx.files.checkDir(p.dir)
    const [clean, dirty] = await this.ctx.files.images([p.clean, p.dirty])
    if (clean) return p.clean
    if (dirty && this.snapshotsDisabled) {
      throw poolError('ERR_VOLUME_DIRTY', `Cannot export ${this.vid} while it runs: snapshots are disabled, so its only image is in use`, {
        vid: this.vid,
      })
    }
    throw this.missing(p.clean)
  }

  /** Ends an export(). The exported path is the clean image itself, so there is nothing to release. */
  async exportEnd(path: string): Promise<void> {
    if (path !== this.paths.clean) {
      throw poolError('ERR_INVALID_ARG_VALUE', `${JSON.stringify(path)} is not an export of ${this.vid}`, { vid: this.vid })
    }
  }

  /**
   * A Readable of the committed image (or of bytes `start` to `end`, inclusive, as
   * fs.createReadStream): data read natively in large chunks, holes produced from
   * memory without reading them. Chunks are shared with the stream: do not write into them.
   * `signal` destroys it with an AbortError.
   */
  exportStream(options?: ExportStreamOptions): Readable {
    this.usable()
    this.requireSaveOnStop('exportStream')
    const o = validateOptions('options', options, ['start', 'end', 'signal'])
    const signal = optional<AbortSignal>('options.signal', o.signal, validateSignal)
    throwIfAborted(signal)
    return exportStream(this.ctx.files, () => this.export(), { start: o.start, end: o.end, signal })
  }

  /**
   * Copy the committed image to the file `path` (outside the pool) with the durable copy:
   * a reflink when `path` is on the pool's filesystem, else a sparse copy (holes kept),
   * into a temp file beside `path`, fsynced and renamed over it. An existing `path` must be
   * a regular file (it is replaced); abort or failure leaves it untouched.
   */
  async exportToFile(path: string, options?: ExportFileOptions): Promise<CopyReport> {
    this.usable()
    this.requireSaveOnStop('exportToFile')
    validatePath('path', path)
    const o = validateOptions('options', options, ['signal', 'onProgress'])
    const opts = {
      signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
      onProgress: optional<ProgressFn>('options.onProgress', o.onProgress, validateFunction),
    }
    throwIfAborted(opts.signal)
    const dest = resolve(path)
    const existing = await outsideStat(dest, false)
    if (existing && !existing.isFile()) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Cannot export ${this.vid} to ${dest}: it exists and is ${entryKind(existing)}, not a regular file (stream it instead: exportStream)`, {
        vid: this.vid,
        path: dest,
      })
    }
    const src = await this.export()
    try {
      return await this.ctx.files.copyOut(src, dest, opts)
    } finally {
      await this.exportEnd(src)
    }
  }


  /** A sparse `V-import.img` of exactly `size` bytes to write into (S only). */
  async importData(size: number): Promise<string> {
    this.usable()
    this.requireSaveOnStop('importData')
    validateSize('size', size)
    return this.locked(async () => {
      this.refuseWhileDirty('import into', await this.guard())
      await this.beginImport(size)
      return this.paths.import
    })
  }

  /** Commit the import file (a revision is added) or delete it. */
  async importDataEnd(success: boolean): Promise<this> {
    this.usable()
    this.requireSaveOnStop('importDataEnd')
    validateBoolean('success', success)
    await this.locked(async () => {
      const p = this.paths
      const images = await this.guard()
      if (success && !images.import) throw this.missing(p.import)
      if (success) this.refuseWhileDirty('commit an import into', images)
      await this.endImport(success)
    })
    return this
  }

  /**
   * Import the raw image file `path` (its size becomes the volume's) and commit it: the
   * durable copy reflinks it when it is on the pool's filesystem, else copies its data
   * runs (copy_file_range, else pread/pwrite), never reading its holes. `sparse: 'always'`
   * also turns all-zero blocks into holes (for fully allocated files; reads all data,
   * never reflinks); `size` cuts or zero-extends the image. Resolves how it was copied.
   * Abort or failure commits nothing.
   */
  async importFile(path: string, options?: ImportFileOptions): Promise<CopyReport> {
    this.usable()
    this.requireSaveOnStop('importFile')
    validatePath('path', path)
    const o = validateOptions('options', options, ['signal', 'onProgress', 'sparse', 'size'])
    const sparse = o.sparse ?? 'auto'
    validateOneOf('options.sparse', sparse, ['auto', 'always'])
    const opts = {
      signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
      onProgress: optional<ProgressFn>('options.onProgress', o.onProgress, validateFunction),
      sparse,
      size: optional<number>('options.size', o.size, validateSize),
    }
    throwIfAborted(opts.signal)
    const src = resolve(path)
    // Opening a FIFO or device for reading would block or never end: those are streams.
    const st = await outsideStat(src, true)
    if (st && !st.isFile()) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Cannot import ${src} into ${this.vid}: it is ${entryKind(st)}, not a regular file (stream it instead: importStream)`, {
        vid: this.vid,
        path: src,
      })
    }
    return this.locked(async () => {
      this.refuseWhileDirty('import into', await this.guard())
      await this.beginImport(null)
      let report: CopyReport
      try {
        report = await this.ctx.files.copyIn(src, this.paths.import, opts)
      } catch (e) {
        await this.endImport(false)
        throw e
      }
      await this.endImport(true)
      return report
    })
  }

  /**
   * Import exactly `size` bytes read from the pipe, FIFO or file at `source` (e.g.
   * '/dev/stdin') and commit them, like importStream, but the native core reads the
   * stream itself (no byte passes through JavaScript); all-zero blocks stay holes.
   */
  async importPipe(source: string, size: number, options?: ImportStreamOptions): Promise<this> {
    this.usable()
    this.requireSaveOnStop('importPipe')
    validatePath('source', source)
    validateSize('size', size)
    const o = validateOptions('options', options, ['signal', 'onProgress'])
    const opts = {
      signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
      onProgress: optional<ProgressFn>('options.onProgress', o.onProgress, validateFunction),
    }
    throwIfAborted(opts.signal)
    const st = await outsideStat(resolve(source), true)
    if (st?.isDirectory()) throw poolError('ERR_INVALID_ARG_VALUE', `Cannot import ${source} into ${this.vid}: it is a directory`, { vid: this.vid, path: source })
    await this.locked(async () => {
      this.refuseWhileDirty('import into', await this.guard())
      await this.beginImport(size)
      try {
        await pumpImport(this.ctx.files, this.paths.import, source, size, opts)
      } catch (e) {
        await this.endImport(false)
        throw e
      }
      await this.endImport(true)
    })
    return this
  }

  /** Copy `src`'s committed data into this volume and commit it (S only; a no-op otherwise). */
  async importVolume(src: ReflinkVolume, options?: AbortOptions): Promise<CopyReport | null> {
    this.usable()
    const signal = optional<AbortSignal>('options.signal', validateOptions('options', options, ['signal']).signal, validateSignal)
    throwIfAborted(signal)
    if (!(src instanceof ReflinkVolume)) {
      throw poolError('ERR_INVALID_ARG_TYPE', `importVolume needs a source ReflinkVolume, got ${src === null ? 'null' : typeof src}`, { vid: this.vid })
    }
    if (!this.saveOnStop) return null
    return this.locked(async () => {
      this.refuseWhileDirty('import into', await this.guard())
      throwIfAborted(signal)
      const srcPath = await src.export()
      try {
        await this.beginImport(null)
        let report: CopyReport
        try {
          report = await this.ctx.files.copy(srcPath, this.paths.import, { signal }, src.ctx.files)
          throwIfAborted(signal) // aborted as the copy ended: nothing is committed yet, so drop it
        } catch (e) {
          await this.endImport(false)
          throw e
        }
        await this.endImport(true)
        return report
      } finally {
        await src.exportEnd(srcPath)
      }
    })
  }

  /** Write `readable` (exactly `size` bytes) through the import file; commit only if it ends cleanly. */
  async importStream(readable: AsyncIterable<ArrayBufferView>, size: number, options?: ImportStreamOptions): Promise<this> {
    this.usable()
    this.requireSaveOnStop('importStream')
    if (readable === null || typeof (readable as Partial<AsyncIterable<Uint8Array>>)?.[Symbol.asyncIterator] !== 'function') {
      throw poolError('ERR_INVALID_ARG_TYPE', 'importStream needs a readable stream (an async iterable of bytes)', { vid: this.vid })
    }
    validateSize('size', size)
    const o = validateOptions('options', options, ['signal', 'onProgress'])
    const opts = {
      signal: optional<AbortSignal>('options.signal', o.signal, validateSignal),
      onProgress: optional<NonNullable<ImportStreamOptions['onProgress']>>('options.onProgress', o.onProgress, validateFunction),
    }
    if (opts.signal?.aborted) throw abortError(opts.signal)
    await this.locked(async () => {
      this.refuseWhileDirty('import into', await this.guard())
      await this.beginImport(size)
      try {
        await writeImport(this.ctx.files, this.paths.import, readable, size, opts)
      } catch (e) {
        await this.endImport(false)
        throw e
      }
      await this.endImport(true)
    })
    return this
  }

  /** Mark an import as in progress (for recovery) and create its sparse file (size null: the copy creates it). */
  private async beginImport(size: number | null): Promise<void> {
    const p = this.paths
    await this.ctx.files.ensureDir(p.dir)
    await writeOwnerMarker(this.ctx.files, this.ctx.store.importMarkPath(this.vid))
    if (size !== null) await this.ctx.files.createSparse(p.import, size)
  }

  private async endImport(success: boolean): Promise<void> {
    const p = this.paths
    if (success) {
      const imp = await this.ctx.files.writableImage(p.import) // never commit a hardlinked import
      await this.commit(p.import)
      if (imp && imp.size !== this.record.size) await this.persist({ ...this.record, size: imp.size })
    } else {
      await this.ctx.files.remove(p.import)
    }
    await this.ctx.files.remove(this.ctx.store.importMarkPath(this.vid))
  }

  /** A Readable of the committed state in the send stream format, the difference from revision `base` if given (docs/design.md §8). */
  send(options?: SendOptions): Readable {
    this.usable()
    this.requireSaveOnStop('send')
    return sendVolume(this.sendAccess(), options)
  }

  /** Apply a send stream and commit its state as a new revision; refused while dirty (docs/design.md §8). */
  async receive(stream: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions): Promise<ReceiveReport> {
    this.usable()
    this.requireSaveOnStop('receive')
    return receiveVolume(this.sendAccess(), stream, options)
  }

  private get states(): VolumeStates {
    // The import file too: a received state is recorded before its commit renames it into place.
    return new VolumeStates(this.ctx.files, this.ctx.dirPath, this.vid, async () => [this.paths.clean, this.paths.import, ...(await this.revisionList()).map((r) => r.path)])
  }

  private sendAccess(): SendAccess {
    return {
      vid: this.vid,
      ctx: this.ctx,
      paths: this.paths,
      states: this.states,
      locked: (fn) => this.locked(fn),
      guard: () => this.guard(),
      revisions: () => this.revisionList(),
      beginImport: (size) => this.beginImport(size),
      endImport: (success) => this.endImport(success),
    }
  }

  // ---- state -------------------------------------------------------------

  /** S and a dirty image exists (running, or crashed while running). */
  async isDirty(): Promise<boolean> {
    return this.saveOnStop && (await this.isRunning())
  }

  /** A dirty image exists, whatever the kind: the volume is running (or crashed while running). */
  async isRunning(): Promise<boolean> {
    this.usable()
    const p = this.paths
    return (await this.ctx.files.checkDir(p.dir)) && (await this.ctx.files.image(p.dirty)) !== null
  }

  /** SoS: own clean image is no longer the source's clean image (the source was committed since start). */
  async isOutdated(): Promise<boolean> {
    this.usable()
    if (!this.snapOnStart) return false
    const src = this.sourcePaths()
    const p = this.paths
    if (!(await this.ctx.files.checkDir(p.dir)) || !(await this.ctx.files.checkDir(src.dir))) return false
    const [own, theirs] = await this.ctx.files.images([p.clean, src.clean])
    if (!own || !theirs) return false
    return own.ino !== theirs.ino || own.dev !== theirs.dev
  }

  /** `{ [rev]: 'YYYY-MM-DDTHH:MM:SSZ' }`, ascending by revision number. */
  async revisions(): Promise<Record<string, string>> {
    this.usable()
    const out: Record<string, string> = {}
    for (const r of await this.revisionList()) out[r.rev] = `${r.timestamp}Z`
    return out
  }

  /** Size of the dirty image, else the clean one, else the nominal size. */
  async size(): Promise<number> {
    this.usable()
    const image = await this.currentImage()
    return image ? image.stats.size : this.record.size
  }

  /** Allocation of the dirty (else clean) image, with the FIEMAP shared/exclusive split. */
  async usage(): Promise<VolumeUsage> {
    this.usable()
    const image = await this.currentImage()
    if (!image) return { allocated: 0, shared: 0, exclusive: 0, extents: 0 }
    const u = await this.ctx.files.usage(image.path)
    return { allocated: u.allocated, shared: u.shared, exclusive: u.exclusive, extents: u.extents }
  }

  /**
   * Change the volume's own settings (like `qvm-volume config`): the
   * revisions kept on commit (applied at the next commit; -1 disables
   * snapshots, which cannot be switched while the volume runs) and whether
   * the VM sees it read-write.
   */
  async setConfig(options: VolumeConfigOptions): Promise<this> {
    if (options === undefined) validateObject('options', options)
    const o = validateOptions('options', options, ['revisionsToKeep', 'rw'])
    const revisionsToKeep = optional<number>('options.revisionsToKeep', o.revisionsToKeep, validateRevisionsToKeep)
    const rw = optional<boolean>('options.rw', o.rw, validateBoolean)
    await this.locked(async () => {
      const { dirty } = await this.guard()
      const toggles = revisionsToKeep !== undefined && (revisionsToKeep === -1) !== (this.record.revisionsToKeep === -1)
      if (toggles && dirty && this.saveOnStop && !this.snapOnStart) {
        throw poolError('ERR_VOLUME_DIRTY', `Cannot ${revisionsToKeep === -1 ? 'disable' : 'enable'} snapshots of ${this.vid} while it runs; stop it first`, {
          vid: this.vid,
          path: this.paths.dirty,
        })
      }
      const next = { ...this.record, ...(revisionsToKeep !== undefined && { revisionsToKeep }), ...(rw !== undefined && { rw }) }
      if (JSON.stringify(next) !== JSON.stringify(this.record)) await this.persist(next)
    })
    return this
  }

  /** Every file of the volume by kind (clean, dirty, precache, import, revisions) with its allocation. */
  async footprint(): Promise<VolumeFootprint> {
    this.usable()
    return volumeFootprint(this.ctx.files, this.paths, { sourceOwnsClean: this.snapOnStart })
  }

  /** Delete every file of the volume, its VM directory when empty, and its record. */
  async remove(): Promise<void> {
    await this.locked(async () => {
      await this.guard()
      await this.removeImages('all')
      await this.states.removeAll()
      await this.ctx.files.removeEmptyDir(this.paths.dir)
      await this.ctx.store.removeVolume(this.vid)
      this.ctx.forget(this.vid)
    })
  }

  // ---- helpers -------------------------------------------------------------

  private async currentImage(): Promise<{ path: string; stats: FileInfo } | null> {
    const p = this.paths
    if (!(await this.ctx.files.checkDir(p.dir))) return null
    const [dirty, clean] = await this.ctx.files.images([p.dirty, p.clean])
    if (dirty) return { path: p.dirty, stats: dirty }
    if (clean) return { path: p.clean, stats: clean }
    return null
  }

  /**
   * The planted-symlink check of every call: the VM directory (when it exists)
   * holds only real directories above it and our four images are regular files.
   * Returns the stats of [clean, dirty, precache, import].
   */
  private async guard(): Promise<VolumeImages> {
    const p = this.paths
    if (!(await this.ctx.files.checkDir(p.dir))) return { clean: null, dirty: null, precache: null, import: null }
    const [clean, dirty, precache, imp] = await this.ctx.files.images([p.clean, p.dirty, p.precache, p.import])
    return { clean, dirty, precache, import: imp }
  }

  /** Delete this volume's temp files and import ('incomplete') or every file of it ('all'). */
  private async removeImages(which: 'incomplete' | 'all'): Promise<void> {
    for (const { path, parsed } of await volumeFiles(this.ctx, this.vid)) {
      if (which === 'incomplete' && !parsed.temp && parsed.kind !== 'import') continue
      if (parsed.outOfRange && !parsed.temp) continue // not ours (see strayRevisions)
      await this.ctx.files.remove(path)
    }
    await this.ctx.files.remove(this.ctx.store.importMarkPath(this.vid))
  }

  private sourcePaths(): VolumePaths {
    if (this.record.source === null) {
      throw poolError('ERR_INVALID_VID', `Volume ${this.vid} is snapOnStart but its record names no valid source`, { vid: this.vid })
    }
    return volumePaths(this.ctx.dirPath, this.record.source)
  }

  /** Imports are refused while a dirty image exists: the stop would rename it over the imported data. */
  private refuseWhileDirty(what: string, images: VolumeImages): void {
    if (images.dirty) {
      throw poolError('ERR_VOLUME_DIRTY', `Cannot ${what} ${this.vid}: it is running or was not cleanly stopped (${this.paths.dirty} exists); stop it first`, {
        vid: this.vid,
        path: this.paths.dirty,
      })
    }
  }

  /** ERR_VOLUME_BROKEN when the record (as last read) is unusable. */
  private usable(): void {
    if (this.brokenReason !== null) throw this.brokenError(this.brokenReason)
  }

  private brokenError(reason: string): Error {
    return poolError(
      'ERR_VOLUME_BROKEN',
      `Volume ${this.vid} is broken: ${reason}. Nothing was done; move ${this.ctx.store.recordPath(this.vid)} away and adopt the volume again (volume adopt)`,
      { vid: this.vid },
    )
  }

  private missing(path: string): Error {
    return poolError('ERR_MISSING_IMAGE', `Missing image file ${path} for volume ${this.vid}`, { vid: this.vid, path })
  }

  private requireSaveOnStop(op: string): void {
    if (!this.saveOnStop) {
      throw poolError('ERR_NOT_SAVE_ON_STOP', `Cannot ${op}: ${this.vid} is not a saveOnStop volume`, { vid: this.vid })
    }
  }

  private async persist(rec: VolumeRecord): Promise<void> {
    await this.ctx.store.writeVolume(rec)
    this.record = rec
  }

  /** Run `fn` under the volume's lock, after re-reading the record (another process may have changed it). */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.ctx.run(lockFileName(this.vid), async () => {
      const rec = await this.ctx.store.readVolume(this.vid)
      // A record still marked `creating` under our lock is an unfinished create (recovery removes it).
      if (!rec || (!isBroken(rec) && rec.creating)) {
        this.ctx.forget(this.vid)
        throw poolError('ERR_UNKNOWN_VOLUME', `Volume ${this.vid} no longer exists in pool ${this.ctx.pool.name}`, { vid: this.vid })
      }
      this.record = this.adopt(rec)
      this.usable()
      return fn()
    })
  }
}
