// ReflinkVolume: one volume of a pool (docs/design.md §3), its record and state;
// the work is done by the modules named after it: lifecycle.ts (create,
// start, stop and commit, resize, remove), revisions.ts, precache.ts,
// import.ts and export.ts (data in and out), send.ts (send stream).
// They reach the volume through a VolumeAccess (access.ts).
//
// Every mutating call runs under the volume's lock (lock.ts) and re-reads the
// volume's record first, so another process's resize or removal is seen.
// Preconditions (and the planted-symlink checks of files.ts) are all checked
// before the first change, so a refused call changes nothing on disk. A volume
// whose record is broken (store/records.ts) refuses every call with ERR_VOLUME_BROKEN.
import { basename } from 'node:path'
import { inspect, type InspectOptions } from 'node:util'
import type { Readable } from 'node:stream'
import { volumePaths, lockFileName, type VolumePaths } from '../store/names'
import { poolError } from '../store/fail'
import { throwIfAborted } from '../errors'
import { optional, validateBoolean, validateObject, validateOptions, validateRevisionsToKeep, validateSignal } from '../validate'
import { sendVolume, volumeState, keptBases, forgetBase, type SendOptions, type SendAccess, type VolumeState } from './send'
import { receiveVolume, type ReceiveOptions, type ReceiveReport, type OpenedStream } from './receive'
import { VolumeStates } from '../store/states'
import { VolumePartial } from './resume'
import { keptBaseFiles, volumeFiles } from '../store/images'
import { isBroken, type LoadedRecord } from '../store/records'
import { volumeFootprint, type VolumeFootprint } from '../store/footprint'
import { startWay, volumeKind, type VolumeKind } from '../store/kind'
import { guardWhileOpen, type Unguarded } from '../store/open-guard'
import * as lifecycle from './lifecycle'
import { guardSpace } from '../store/space'
import * as revisions from './revisions'
import * as dataIn from './import'
import * as dataOut from './export'
import type { PoolContext } from '../store/context'
import type { FileInfo } from '../store/files'
import type { VolumeAccess, VolumeImages } from './access'
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
  ExportPipeOptions,
  CopyReport,
  VolumeConfigOptions,
  RemoveVolumesOptions,
} from '../store/types'

/**
 * Every public method but the internal ones and exportEnd (a release, always
 * allowed): refused once the pool is closed (open-guard.ts).
 */
const VOLUME_CALLS = [
  'create', 'verify', 'start', 'stop', 'strayRevisions', 'revert', 'resize', 'export', 'exportStream', 'exportToFile',
  'importData', 'importDataEnd', 'importFile', 'importPipe', 'importVolume', 'importStream', 'send', 'receive', 'receiveOpened',
  'isDirty', 'isRunning', 'isOutdated', 'revisions', 'size', 'usage', 'setConfig', 'footprint', 'remove',
  'startCost', 'startChecked', 'state', 'bases', 'forgetBase', 'cleanIno', 'discardIfUntouched', 'exportPipe', 'resumeToken', 'abortReceive',
] as const

/**
 * The pool a volume belongs to: a `ReflinkPool`, which ts/pool/pool.ts merges into this
 * declaration (module augmentation), so that this layer names its pool without importing
 * the layer above it (docs/design.md §1).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- pool.ts fills it in
export interface VolumePool {}

/** What a volume asks of its pool (the pool it belongs to answers these). */
interface PoolCalls {
  getVolume(vid: string): { vid: string }
  removeVolumes(volumes: ReflinkVolume[], options: RemoveVolumesOptions & { force: boolean }): Promise<unknown>
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
  /** What the volume modules see of this volume. */
  private readonly access: VolumeAccess

  /** @internal */
  constructor(
    private readonly ctx: PoolContext,
    rec: LoadedRecord,
  ) {
    this.record = this.adopt(rec)
    this.access = this.makeAccess()
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

  /** The pool the volume belongs to (a `ReflinkPool`). */
  get pool(): VolumePool {
    return this.ctx.pool as unknown as VolumePool
  }

  /** The calls a volume makes of its pool. */
  private get owner(): PoolCalls {
    return this.ctx.pool as unknown as PoolCalls
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
  /** What the volume is (docs/design.md §3), from its two flags below. */
  get kind(): VolumeKind {
    return volumeKind(this.record)
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
    return this.kind === 'volatile' && this.ctx.pool.ephemeralVolatile
  }
  /** The dirty image: what a running VM uses. */
  get path(): string {
    return this.paths.dirty
  }
  /** A short summary for `console.log(volume)` (`util.inspect`): the volume's settings, never the pool's internals. */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    const { vid, rw, saveOnStop, snapOnStart, source, revisionsToKeep } = this.record
    const summary = this.brokenReason === null ? { vid, rw, saveOnStop, snapOnStart, source, revisionsToKeep } : { vid, broken: this.brokenReason }
    return `ReflinkVolume ${inspect(summary, { ...options, depth: 0, breakLength: Infinity })}`
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
    return startWay(this.record) === 'rename'
  }
  private get usesPrecache(): boolean {
    return startWay(this.record) === 'precache'
  }

  // ---- lifecycle (lifecycle.ts, revisions.ts) -----------------------

  /** Remove every image of this (registered) volume; S & !SoS: a sparse clean image of `size` and its precache. */
  async create(): Promise<this> {
    await this.locked(() => this.createFiles())
    return this
  }

  /** @internal the body of create(), also run by pool.createVolume under the same lock. */
  async createFiles(): Promise<void> {
    await lifecycle.createFiles(this.access)
  }

  /** The image the volume needs to start exists; else ERR_MISSING_IMAGE naming it. */
  async verify(): Promise<true> {
    return lifecycle.verify(this.access)
  }

  /** Prepare the dirty image and return its path (docs/design.md §3, start). ERR_LOW_SPACE below the pool's minFree (§7). */
  async start(options?: AbortOptions): Promise<string> {
    validateOptions('options', options, ['signal']) // a usage error comes before a space refusal
    await guardSpace(this.ctx, `start ${this.vid}`, () => lifecycle.startCost(this.access))
    return lifecycle.start(this.access, options)
  }

  /** @internal What start() could write (the batch sums it for its one space check). */
  startCost(): Promise<number> {
    return lifecycle.startCost(this.access)
  }

  /** @internal start() without its space check (a batch checked once for all). */
  startChecked(options?: AbortOptions): Promise<string> {
    return lifecycle.start(this.access, options)
  }

  /** Idempotent. S: commit the dirty image (or drop it with `discard`); others: remove their images. */
  async stop(options?: StopOptions): Promise<this> {
    await lifecycle.stop(this.access, options)
    return this
  }

  /**
   * Files named as revisions of this volume whose number is out of range
   * (above 2^53 - 2): not made by the pool, so never counted, pruned, reverted
   * to or removed; reported here so they can be moved away.
   */
  async strayRevisions(): Promise<string[]> {
    this.usable()
    return revisions.strayRevisions(this.access)
  }

  /** Replace the clean image with revision `rev` (default newest); the current one becomes a new revision. */
  async revert(rev?: number | string, options?: AbortOptions): Promise<this> {
    await revisions.revert(this.access, rev, options)
    return this
  }

  /** Running: resize dirty in place (+ loop devices). Stopped S & !SoS: a new clean inode. Else nominal. */
  async resize(size: number, options?: ResizeOptions): Promise<this> {
    await lifecycle.resize(this.access, size, options)
    return this
  }

  // ---- data path (export.ts, import.ts, send.ts) -------------

  /** A path to the committed data (S only). Commits rename a new inode over it, so an open reader keeps its data. */
  async export(): Promise<string> {
    return dataOut.exportPath(this.access)
  }

  /** Ends an export(). The exported path is the clean image itself, so there is nothing to release. */
  async exportEnd(path: string): Promise<void> {
    dataOut.exportEnd(this.access, path)
  }

  /**
   * A Readable of the committed image (or of bytes `start` to `end`, inclusive, as
   * fs.createReadStream): data read natively in large chunks, holes produced from
   * memory without reading them. Chunks are shared with the stream: do not write into them.
   * `signal` destroys it with an AbortError.
   */
  exportStream(options?: ExportStreamOptions): Readable {
    return dataOut.exportStream(this.access, options)
  }

  /**
   * Write the committed image (or bytes `start` to `end`, inclusive) into the open file
   * descriptor `fd` (a pipe, FIFO, socket or file, e.g. 1 for stdout), like exportStream
   * piped into it, but the native core reads the image and writes `fd` in one task (no
   * byte passes through JavaScript); holes are written as zeros without being read.
   * Resolves to the bytes written; keep `fd` open until then. A reader that went away
   * rejects with EPIPE; `signal` aborts within 100 ms even while the reader is stalled.
   */
  async exportPipe(fd: number, options?: ExportPipeOptions): Promise<number> {
    return dataOut.exportPipe(this.access, fd, options)
  }

  /**
   * Copy the committed image to the file `path` (outside the pool) with the durable copy:
   * a reflink when `path` is on the pool's filesystem, else a sparse copy (holes kept),
   * into a temp file beside `path`, fsynced and renamed over it. An existing `path` must be
   * a regular file (it is replaced); abort or failure leaves it untouched.
   */
  async exportToFile(path: string, options?: ExportFileOptions): Promise<CopyReport> {
    return dataOut.exportToFile(this.access, path, options)
  }

  /** A sparse `V-import.img` of exactly `size` bytes to write into (S only). */
  async importData(size: number): Promise<string> {
    return dataIn.importData(this.access, size)
  }

  /** Commit the import file (a revision is added) or delete it. */
  async importDataEnd(success: boolean): Promise<this> {
    await dataIn.importDataEnd(this.access, success)
    return this
  }

  /**
   * Import the raw image file `path` (its size becomes the volume's) and commit it: the
   * durable copy reflinks it when it is on the pool's filesystem, else copies its data
   * runs, never reading its holes and leaving its all-zero blocks as holes (as Qubes'
   * `cp --sparse=always`). `sparse: 'always'` does that even where it could reflink (for
   * fully allocated files); `size` cuts or zero-extends the image. Resolves how it was copied.
   * Abort or failure commits nothing.
   */
  async importFile(path: string, options?: ImportFileOptions): Promise<CopyReport> {
    return dataIn.importFile(this.access, path, options)
  }

  /**
   * Import exactly `size` bytes read from the pipe, FIFO or file at `source` (e.g.
   * '/dev/stdin') and commit them, like importStream, but the native core reads the
   * stream itself (no byte passes through JavaScript); all-zero blocks stay holes.
   */
  async importPipe(source: string, size: number, options?: ImportStreamOptions): Promise<this> {
    await dataIn.importPipe(this.access, source, size, options)
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
    return dataIn.importVolume(this.access, src.access, signal)
  }

  /** Write `readable` (exactly `size` bytes) through the import file; commit only if it ends cleanly. */
  async importStream(readable: AsyncIterable<ArrayBufferView>, size: number, options?: ImportStreamOptions): Promise<this> {
    await dataIn.importStream(this.access, readable, size, options)
    return this
  }

  /** A Readable of the committed state in the send stream format, the difference from revision `base` if given (docs/design.md §8). */
  send(options?: SendOptions): Readable {
    return sendVolume(this.sendAccess('send'), options)
  }

  /** The committed state: its identity (what `send({ since })` on the other side takes), time and size (docs/design.md §8.1). */
  async state(): Promise<VolumeState> {
    return volumeState(this.sendAccess('state'))
  }

  /** The kept bases: states sent whole, kept whatever pruning does until a newer state is sent (docs/design.md §8.6). */
  async bases(): Promise<VolumeState[]> {
    return keptBases(this.sendAccess('bases'))
  }

  /** Drop the kept base of state `id` (a send from it is then a full one unless a revision still holds it). */
  async forgetBase(id: string): Promise<void> {
    await forgetBase(this.sendAccess('forgetBase'), id)
  }

  /** The token for `send({ resume })` on the sending host: it continues the receive that was cut here (docs/design.md §8.9); ERR_RESUME_MISMATCH when there is none. */
  async resumeToken(): Promise<string> {
    const access = this.sendAccess('resumeToken')
    return this.locked(() => access.partial.token())
  }

  /** Drop the partial receive kept for a resume (`receive --abort`); false when there was none. */
  async abortReceive(): Promise<boolean> {
    const access = this.sendAccess('abortReceive')
    return this.locked(() => access.partial.drop())
  }

  /** Apply a send stream and commit its state as a new revision; refused while dirty (docs/design.md §8). */
  async receive(stream: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions): Promise<ReceiveReport> {
    return this.receiveOpened(stream, options)
  }

  /** @internal receive() of a stream whose header pool.receiveVolume already read and decoded. */
  async receiveOpened(stream: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions, opened?: OpenedStream): Promise<ReceiveReport> {
    return receiveVolume(this.sendAccess('receive'), stream, options, opened)
  }

  private get states(): VolumeStates {
    // A received state is recorded before its commit renames it into place: `update` keeps it as an extra.
    return new VolumeStates(this.ctx.files, this.ctx.dirPath, this.vid, async () => [
      this.paths.clean,
      ...(await revisions.revisionList(this.access)).map((r) => r.path),
      ...(await keptBaseFiles(this.ctx.files, this.paths)).map((b) => b.path),
    ])
  }

  /** What send.ts and receive.ts need of this volume, for the call `op`: refused first on a broken or closed volume, or one that is not save-on-stop. */
  private sendAccess(op: string): SendAccess {
    this.usable()
    this.requireSaveOnStop(op)
    return {
      vid: this.vid,
      ctx: this.ctx,
      paths: this.paths,
      kind: { saveOnStop: this.saveOnStop, snapOnStart: this.snapOnStart, rw: this.rw },
      partial: new VolumePartial(this.ctx.files, this.ctx.dirPath, this.vid, this.paths),
      committedImageOf: async (vid) => {
        const other = volumePaths(this.ctx.dirPath, this.owner.getVolume(vid).vid).clean
        return (await this.ctx.files.image(other)) ? other : null
      },
      states: this.states,
      locked: (fn) => this.locked(fn),
      guard: () => this.guard(),
      revisions: () => revisions.revisionList(this.access),
      keptBases: () => keptBaseFiles(this.ctx.files, this.paths),
      refuseWhileImporting: () => dataIn.refuseWhileImporting(this.access),
      endReceive: (success, file, received) => dataIn.endReceive(this.access, success, file, received),
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
    return revisions.revisionTimes(this.access)
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
      if (toggles && dirty && this.kind === 'origin') {
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

  /**
   * Delete every file of the volume, its VM directory when empty, and its
   * record: `pool.removeVolumes([this], options)`, with `force` true by
   * default (a running volume is removed, as the Qubes driver does); a source
   * that other volumes start from needs `recursive`.
   */
  async remove(options?: RemoveVolumesOptions): Promise<void> {
    this.usable()
    // A running volume is removed as it always was here (the Qubes driver's remove); the batch call refuses it without force.
    await this.owner.removeVolumes([this], { force: true, ...options })
  }

  /** @internal the inode of the clean image now (null: none), for discardIfUntouched. */
  async cleanIno(): Promise<number | null> {
    return (await this.ctx.files.image(this.paths.clean))?.ino ?? null
  }

  /** @internal remove the volume unless something was committed into it since its clean image was `ino`. */
  discardIfUntouched(ino: number): Promise<boolean> {
    return lifecycle.removeIfUntouched(this.access, ino)
  }

  // ---- helpers -------------------------------------------------------------

  /** The record and private steps as the volume modules see them (getters: always the record as last read). */
  private makeAccess(): VolumeAccess {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getters below read the volume, not the access object
    const self = this
    return {
      ctx: this.ctx,
      get vid() { return self.vid },
      get record() { return self.record },
      get kind() { return self.kind },
      get paths() { return self.paths },
      get snapshotsDisabled() { return self.snapshotsDisabled },
      get usesPrecache() { return self.usesPrecache },
      get states() { return self.states },
      persist: (rec) => this.persist(rec),
      locked: (fn) => this.locked(fn),
      guard: () => this.guard(),
      usable: () => this.usable(),
      requireSaveOnStop: (op) => this.requireSaveOnStop(op),
      removeImages: (which) => this.removeImages(which),
      sourcePaths: () => this.sourcePaths(),
      missing: (path) => this.missing(path),
    }
  }

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
   * Returns the stats of { clean, dirty, precache, import }.
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

  static {
    guardWhileOpen(ReflinkVolume, VOLUME_CALLS, (volume) => volume.ctx.closedName())
  }
}
const _allVolumeCallsGuarded: Unguarded<ReflinkVolume, typeof VOLUME_CALLS, 'reload' | 'createFiles' | 'exportEnd'> extends never ? true : never = true
