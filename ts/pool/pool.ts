// ReflinkPool (driver `file-reflink`, docs/design.md §2-3): the live pool over a
// directory that setup.ts opened and laid out: its session, the volume registry,
// adoption of existing images, recovery at open, its configuration.
//
// The registry is a cache of the per-volume records on disk (store/records.ts):
// listVolumes() re-reads the directory of records, so volumes created or
// removed by another process show up; loadVolume() re-reads one record;
// getVolume() answers from the cache (synchronously).
// A record that fails its schema is kept as a broken volume (listed, refused
// on use), so one bad file never stops the pool from opening.
import { basename, isAbsolute, join, relative } from 'node:path'
import { randomBytes } from 'node:crypto'
import { inspect, type InspectOptions } from 'node:util'
import type { PoolFiles } from '../store/files'
import { preparePool, withMinFree } from './setup'
import { Store, isBroken, type LoadedRecord, type StoredPoolConfig } from '../store/records'
import { Locks } from '../store/lock'
import { SELF_OWNER } from '../store/owner'
import { recover, undoUnfinishedCreate, type RecoveryReport } from './recovery'
import { ReflinkVolume } from '../volume/volume'
import { parseVid } from '../store/vid'
import { lockFileName, sessionFileName, volumePaths } from '../store/names'
import { volumeFiles } from '../store/images'
import { adoptAll } from './adopt-all'
import { poolError, hasCode } from '../store/fail'
import { asyncDispose } from '../dispose'
import { optional, validateObject, validateOptions } from '../validate'
import { volumeRecord } from './volume-options'
import { volumeKind } from '../store/kind'
import { guardWhileOpen, poolClosedError, type Unguarded } from '../store/open-guard'
import { guardSpace, METADATA_BYTES, validateMinFree } from '../store/space'
import { ifRemoved } from './if-removed'
import { receiveCreating, type ReceiveOptions, type ReceiveVolumeReport } from '../volume/receive'
import { cloneVolumes, createVolumes, startVolumes, stopVolumes, type BatchReport, type CloneVolumesOptions } from './batch'
import { removeVolumes, type RemoveReport } from './remove'
import { dependentsIndex } from './dependents'
import type { RegistryContext } from './context'
import {
  DRIVER, type AdoptOptions, type AdoptReport, type IfRemovedReport, type PoolConfig, type PoolConfigOptions, type PoolOptions, type UsageDetails, type VolumeOptions, type VolumeRecord,
  type MinFree, type BatchOptions, type RemoveVolumesOptions,
} from '../store/types'

/** Session file names of the pools open in this process. */
const OPEN_SESSIONS = new Set<string>()

/** Every public method but close (and the disposer): refused once the pool is closed (open-guard.ts). */
const POOL_CALLS = [
  'createVolume', 'adoptVolume', 'adoptAll', 'cloneVolumes', 'createVolumes', 'startVolumes', 'stopVolumes',
  'getVolume', 'loadVolume', 'listVolumes', 'usageDetails', 'size', 'usage', 'includedIn',
  'setConfig', 'removeVolumes', 'dependents', 'receiveVolume', 'usageIfRemoved',
] as const

declare module '../volume/volume' {
  // A volume's `pool` is a ReflinkPool: volume.ts declares the name (and its doc), this layer says what it is.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the members are ReflinkPool's
  interface VolumePool extends ReflinkPool {}
}

/**
 * A pool of volumes in one directory (driver `file-reflink`): open it with
 * `ReflinkPool.open`, make volumes with `createVolume`, close it (or
 * `await using`) when done.
 */
export class ReflinkPool {
  /** Always `file-reflink`. */
  readonly driver = DRIVER
  /** What recovery did when this pool was opened. */
  readonly recovery: RecoveryReport = { fullScan: false, recovered: [], removed: [] }
  /** Conditions found at open that the caller should tell its user about (e.g. a full filesystem); empty normally. */
  readonly warnings: string[] = []

  private readonly volumes = new Map<string, ReflinkVolume>()
  /** listVolumes() order, rebuilt only after the set of volumes changed. */
  private sorted: ReflinkVolume[] | null = null
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly ctx: RegistryContext
  private closed = false
  /** This instance's session file (see startSession). */
  private session: string | null = null

  private constructor(
    /** The absolute pool directory. */
    readonly dirPath: string,
    private stored: StoredPoolConfig,
    private readonly files: PoolFiles,
    private readonly store: Store,
    private readonly locks: Locks,
  ) {
    this.ctx = {
      pool: this,
      dirPath,
      files,
      store,
      run: (lockName, fn) => this.run(lockName, fn),
      runBatch: (lockNames, fn) => this.track(() => this.locks.withInProcess(lockNames, fn)),
      forget: (vid) => this.forget(vid),
      remember: (rec) => this.remember(rec)!,
      cached: (vid) => this.volumes.has(vid),
      closedName: () => (this.closed ? this.name : null),
      markLive: (fileName) => {
        OPEN_SESSIONS.add(fileName)
        return () => OPEN_SESSIONS.delete(fileName)
      },
    }
  }

  /**
   * Open the pool at `dirPath`, creating it on first use (setup, with the
   * reflink check unless `setupCheck: false`), then load its volumes and
   * recover from crashed operations. A directory laid out by the Qubes
   * file-reflink driver opens as an empty pool: register its images with
   * adoptAll() or adoptVolume(). Options given when reopening an existing
   * pool replace the persisted ones; they never change existing volumes.
   */
  static async open(options: PoolOptions): Promise<ReflinkPool> {
    const { dirPath, files, store, stored } = await preparePool(options)
    const pool = new ReflinkPool(dirPath, stored, files, store, new Locks(files, store.paths.locks))
    try {
      await pool.startSession()
    } catch (e) {
      files.close() // now, not at garbage collection: the filesystem can be unmounted right away
      throw e
    }
    try {
      const records = await store.loadAll()
      for (const rec of records) pool.remember(rec)
      const unfinished = records.filter((r) => !isBroken(r) && r.creating).map((r) => r.vid)
      Object.assign(pool.recovery, await recover(pool.ctx, (name) => OPEN_SESSIONS.has(name), unfinished))
      await pool.migrateRecords()
    } catch (e) {
      await pool.close()
      throw e
    }
    return pool
  }

  /** Persist the revisionsToKeep that records without one were given at load (once; under each volume's lock). */
  private async migrateRecords(): Promise<void> {
    for (const vid of [...this.store.unmigrated]) {
      await this.run(lockFileName(vid), async () => {
        const rec = await this.store.readVolume(vid)
        if (rec && !isBroken(rec) && this.store.unmigrated.has(vid)) {
          await this.store.writeVolume(rec)
          this.remember(rec)
        }
      })
    }
  }

  /**
   * Durably record that this pool instance is open, before it changes
   * anything: if the process dies or the power fails, the next open finds the
   * session dead and scans the pool for leftovers (recovery.ts).
   */
  private async startSession(): Promise<void> {
    const name = sessionFileName(`${process.pid}-${randomBytes(6).toString('hex')}`)
    OPEN_SESSIONS.add(name)
    this.session = join(this.store.paths.sessions, name)
    try {
      await this.files.writeFile(this.session, SELF_OWNER + '\n')
    } catch (e) {
      if (!hasCode(e, 'ENOSPC', 'EDQUOT')) throw e
      // A full filesystem must not lock its admin out of the pool: reading it needs
      // no space. Every change still fails with ENOSPC and changes nothing; what is
      // lost is only the full scan after a power cut during this instance, so a temp
      // file it left could stay until a later full scan (docs/design.md §4).
      const code = (e as { code: string }).code
      OPEN_SESSIONS.delete(name)
      this.session = null
      this.warnings.push(`the filesystem of ${this.dirPath} is full (${code}): the pool opened for reading; changes fail with ${code} and change nothing until space is freed`)
    }
  }

  /** The pool's name. */
  get name(): string {
    return this.stored.name
  }
  /** The default revisionsToKeep of volumes created from now on. */
  get revisionsToKeep(): number {
    return this.stored.revisionsToKeep
  }
  /** Whether volatile volumes are ephemeral (see PoolOptions). */
  get ephemeralVolatile(): boolean {
    return this.stored.ephemeralVolatile
  }
  /** The space guard's floor (0: off); see PoolOptions.minFree. */
  get minFree(): MinFree {
    return this.stored.minFree ?? 0
  }

  /** A short summary for `console.log(pool)` (`util.inspect`): its name, directory and state, not its caches and locks. */
  [inspect.custom](_depth: number, options: InspectOptions): string {
    return `ReflinkPool ${inspect({ name: this.name, dirPath: this.dirPath, revisionsToKeep: this.revisionsToKeep, closed: this.closed }, { ...options, depth: 0, breakLength: Infinity })}`
  }

  /** The persisted configuration (a copy). */
  get config(): PoolConfig {
    return {
      name: this.name,
      dirPath: this.dirPath,
      driver: DRIVER,
      revisionsToKeep: this.revisionsToKeep,
      ephemeralVolatile: this.ephemeralVolatile,
      minFree: this.minFree,
    }
  }

  /** Change pool settings (persisted; what is not given is kept). Existing volumes are not touched. */
  async setConfig(options: PoolConfigOptions): Promise<PoolConfig> {
    if (options === undefined) validateObject('options', options)
    const o = validateOptions('options', options, ['minFree'])
    const minFree = optional<MinFree>('options.minFree', o.minFree, (n, v) => validateMinFree(n, v))
    return this.track(async () => {
      const next = minFree === undefined ? this.stored : withMinFree(this.stored, minFree)
      if (JSON.stringify(next) !== JSON.stringify(this.stored)) await this.store.writePool(next)
      this.stored = next
      return this.config
    })
  }

  /**
   * Register a volume and run its create(). vid defaults to
   * `<vm.dirPathPrefix>/<vm.name>/<name>`. Every argument is checked before
   * anything is written. Files of the vid that exist without a record (an
   * existing Qubes pool, a restored backup) are never overwritten: the call is
   * refused with ERR_VOLUME_EXISTS naming them (adoptVolume registers them).
   * An origin's record is written first, marked `creating`, so that a crash
   * between it and its files leaves something recovery can undo.
   */
  async createVolume(options: VolumeOptions): Promise<ReflinkVolume> {
    const record = volumeRecord(this, options, 'createVolume')
    if (this.volumes.has(record.vid)) throw this.exists(record.vid)
    await guardSpace(this.ctx, `create ${record.vid}`, METADATA_BYTES) // a sparse image: metadata only
    return this.run(lockFileName(record.vid), async () => {
      await this.checkNew(record)
      const found = await volumeFiles(this.ctx, record.vid)
      if (found.length) {
        throw poolError(
          'ERR_VOLUME_EXISTS',
          `Volume ${record.vid} has no record in pool ${this.name}, but files of it exist: ${found.map((f) => f.path).join(', ')}. ` +
            'Nothing was changed; register them with adoptVolume (CLI: volume adopt), or move them away',
          { vid: record.vid, path: found[0].path },
        )
      }
      // Only an origin makes files at create; the other kinds need no intent record (one durable write).
      if (volumeKind(record) === 'origin') {
        await this.store.writeVolume({ ...record, creating: true })
        try {
          await new ReflinkVolume(this.ctx, record).createFiles()
        } catch (e) {
          await undoUnfinishedCreate(this.ctx, record.vid).catch(() => {}) // else recovery does it at the next open
          throw e
        }
      }
      await this.store.writeVolume(record)
      this.remember(record)
      return this.volumes.get(record.vid)!
    })
  }

  /**
   * Register the existing images of a volume without changing a byte of them:
   * only the record is written. A save-on-stop volume (the default here) needs
   * its clean image `<vid>.img` or, when running, its dirty image; its size is
   * the image's. Revisions, precache and dirty images named as the Qubes
   * file-reflink driver names them are used as they are.
   */
  async adoptVolume(options: AdoptOptions): Promise<ReflinkVolume> {
    const record = volumeRecord(this, options, 'adoptVolume')
    if (this.volumes.has(record.vid)) throw this.exists(record.vid)
    return this.run(lockFileName(record.vid), async () => {
      await this.checkNew(record)
      const p = volumePaths(this.dirPath, record.vid)
      if (volumeKind(record) === 'origin') {
        const [clean, dirty] = (await this.files.checkDir(p.dir)) ? await this.files.images([p.clean, p.dirty]) : [null, null]
        const image = dirty ?? clean
        if (!image) {
          throw poolError('ERR_MISSING_IMAGE', `Cannot adopt ${record.vid}: it has no image ${p.clean} (nor ${p.dirty})`, { vid: record.vid, path: p.clean })
        }
        record.size = image.size
      } else if (await this.files.checkDir(p.dir)) {
        await this.files.images([p.clean, p.dirty, p.precache, p.import]) // refuse planted symlinks up front
      }
      await this.store.writeVolume(record)
      this.remember(record)
      return this.volumes.get(record.vid)!
    })
  }

  /**
   * Adopt every image set of the pool directory that has a clean image
   * (`appvms|vm-templates/<vm>/<name>.img`) and no record, as an origin
   * (adoptVolume). It never stops part-way: whatever it cannot adopt (an
   * invalid name, a set without a clean image, a symlink, FIFO, device or
   * directory named as an image, a hardlinked clean image without precache, a
   * directory it cannot read) is reported in `skipped` with the reason.
   * Changes no image; run it with the VMs stopped.
   */
  async adoptAll(): Promise<AdoptReport> {
    await this.refresh()
    return adoptAll(this.ctx)
  }

  /** Under the vid's lock: no record exists (an unfinished create's is undone first), and the source does. */
  private async checkNew(record: VolumeRecord): Promise<void> {
    await undoUnfinishedCreate(this.ctx, record.vid)
    if (await this.store.readVolume(record.vid)) throw this.exists(record.vid)
    if (record.source !== null) {
      const src = await this.store.readVolume(record.source)
      if (!src || isBroken(src) || src.creating) {
        throw poolError('ERR_UNKNOWN_VOLUME', `Source ${record.source} of volume ${record.vid} is not a volume of pool ${this.name}`, {
          vid: record.vid,
        })
      }
    }
  }

  // ---- batches (docs/design.md §7) ----------------------------------------

  /**
   * Clone `template` (a save-on-stop volume or its vid) to one new volume per
   * vid in `targets`, in one batch: the reflinks, one durability barrier, the
   * renames, then the records. All or nothing: a failed or aborted call makes
   * no volume. `{ start: true }` also makes each clone's dirty image (the
   * volumes come back running).
   */
  async cloneVolumes(template: ReflinkVolume | string, targets: readonly string[], options?: CloneVolumesOptions): Promise<BatchReport> {
    return cloneVolumes(this.ctx, template, targets, options)
  }

  /** createVolume for many volumes in one batch (all or nothing; see cloneVolumes). */
  async createVolumes(configs: readonly VolumeOptions[], options?: BatchOptions): Promise<BatchReport> {
    return createVolumes(this.ctx, configs, options)
  }

  /** start() many volumes: snapshot and save-on-stop volumes in one batch, other kinds a few at a time. Resolves the dirty image paths. */
  async startVolumes(volumes: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<string[]> {
    return startVolumes(this.ctx, volumes, options)
  }

  /** stop() many volumes: snapshot volumes in one batch, other kinds a few at a time. */
  async stopVolumes(volumes: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<void> {
    return stopVolumes(this.ctx, volumes, options)
  }

  /**
   * Remove many volumes (or vids) in one batch: their records, every file, the
   * empty VM directories, one barrier. All or nothing: a running volume without
   * `force` (ERR_VOLUME_DIRTY), a volume that others start from without
   * `recursive` (ERR_HAS_DEPENDENTS, naming them) or an abort before the commit
   * point removes nothing; after a crash each volume is whole or gone.
   */
  removeVolumes(volumes: readonly (ReflinkVolume | string)[], options?: RemoveVolumesOptions): Promise<RemoveReport> {
    return removeVolumes(this.ctx, volumes, options)
  }

  /** The vids of the volumes that start from `vid` (snapshot volumes whose source it is), sorted; from the records on disk now. */
  async dependents(vid: string): Promise<string[]> {
    parseVid(vid)
    return dependentsIndex(await this.listVolumes()).get(vid) ?? []
  }

  private exists(vid: string): Error {
    return poolError('ERR_VOLUME_EXISTS', `Volume ${vid} already exists in pool ${this.name}`, { vid })
  }

  /**
   * The volume `vid` from this pool's cache, as of the last open, listVolumes()
   * or loadVolume(): a volume another process created since is not seen (use
   * loadVolume). ERR_UNKNOWN_VOLUME when absent.
   */
  getVolume(vid: string): ReflinkVolume {
    parseVid(vid)
    const volume = this.volumes.get(vid)
    if (!volume) throw poolError('ERR_UNKNOWN_VOLUME', `No volume ${vid} in pool ${this.name}`, { vid })
    return volume
  }

  /**
   * Apply a send stream to the volume `vid`, creating it when the pool lacks it: a full
   * stream's header gives its size and kind (docs/design.md §8.5). A receive that fails
   * removes the volume it created. `created` says whether it did.
   */
  receiveVolume(vid: string, stream: AsyncIterable<ArrayBufferView>, options?: ReceiveOptions): Promise<ReceiveVolumeReport> {
    const { name } = parseVid(vid)
    return receiveCreating(vid, {
      load: () => this.loadVolume(vid).catch((e: unknown) => {
        if (hasCode(e, 'ERR_UNKNOWN_VOLUME')) return null
        throw e
      }),
      create: async ({ size, rw }) => {
        // Before the volume is made: a full stream may write every byte of it (the receive checks again under its lock).
        await guardSpace(this.ctx, `receive into ${vid}`, METADATA_BYTES + size)
        return this.createVolume({ vid, name, size, rw, saveOnStop: true })
      },
    }, stream, options)
  }

  /**
   * The volume `vid` as it is on disk now: sees a volume another process created
   * (or removed: then ERR_UNKNOWN_VOLUME) since this pool was opened.
   */
  async loadVolume(vid: string): Promise<ReflinkVolume> {
    parseVid(vid)
    const rec = await this.store.readVolume(vid)
    if (!rec || (!isBroken(rec) && rec.creating)) {
      this.forget(vid)
      throw poolError('ERR_UNKNOWN_VOLUME', `No volume ${vid} in pool ${this.name}`, { vid })
    }
    this.remember(rec)
    return this.volumes.get(vid)!
  }

  /** Every volume of the pool, by vid; re-reads the record directory (when it changed) so other processes' changes show. */
  async listVolumes(): Promise<ReflinkVolume[]> {
    await this.refresh()
    if (!this.sorted) this.sorted = [...this.volumes.values()].sort((a, b) => (a.vid < b.vid ? -1 : a.vid > b.vid ? 1 : 0))
    return [...this.sorted]
  }

  /** Sync the cache with the records on disk (read only the new ones). */
  private async refresh(): Promise<void> {
    let vids: string[] | null
    try {
      vids = await this.store.listVids()
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return // the pool's disk is gone: keep what we know
      throw e
    }
    if (vids === null) return
    const onDisk = new Set(vids)
    for (const vid of this.volumes.keys()) if (!onDisk.has(vid)) this.forget(vid)
    const fresh = vids.filter((vid) => !this.volumes.has(vid))
    for (const rec of await this.store.readVolumes(fresh)) this.remember(rec)
  }

  /** Add a loaded record to the registry (broken ones too) and return its volume; an unfinished create is not a volume yet. */
  private remember(rec: LoadedRecord): ReflinkVolume | undefined {
    if (!isBroken(rec) && rec.creating) return undefined
    let volume = this.volumes.get(rec.vid)
    if (volume) volume.reload(rec)
    else this.volumes.set(rec.vid, (volume = new ReflinkVolume(this.ctx, rec)))
    this.sorted = null
    return volume
  }

  private forget(vid: string): void {
    if (this.volumes.delete(vid)) this.sorted = null
  }

  /** `{ dataSize, dataUsage }` of the pool's filesystem; `{}` when the directory is missing. */
  async usageDetails(): Promise<UsageDetails> {
    try {
      const st = await this.files.fsStats()
      return { dataSize: st.size, dataUsage: st.used }
    } catch (e) {
      if (hasCode(e, 'ENOENT')) return {}
      throw e
    }
  }

  /**
   * The bytes removing the volumes `vids` (together) would give back: the data
   * extents of all their files (images, precache, revisions, temp files) that no
   * other file of the pool maps (FIEMAP). Extents they share only with each other
   * count once; extents a volume outside the set still maps count not at all. An
   * estimate (docs/design.md §7): reflinks made outside the pool are not seen.
   */
  async usageIfRemoved(vids: readonly string[]): Promise<IfRemovedReport> {
    if (!Array.isArray(vids)) throw poolError('ERR_INVALID_ARG_TYPE', 'vids must be an array of volume ids')
    for (const vid of vids) parseVid(vid)
    return this.track(async () => {
      await this.refresh() // volumes another process made since open count too
      for (const vid of vids) this.getVolume(vid)
      return ifRemoved(this.ctx, vids)
    })
  }

  /** Size of the pool's filesystem in bytes; null when the directory is missing. */
  async size(): Promise<number | null> {
    return (await this.usageDetails()).dataSize ?? null
  }

  /** Bytes used on the pool's filesystem; null when the directory is missing. */
  async usage(): Promise<number | null> {
    return (await this.usageDetails()).dataUsage ?? null
  }

  /** The other pool (if any) whose directory contains this one; the innermost when several do. */
  includedIn(pools: Iterable<ReflinkPool> | Record<string, ReflinkPool>): ReflinkPool | null {
    const list = Symbol.iterator in Object(pools) ? [...(pools as Iterable<ReflinkPool>)] : Object.values(pools)
    let best: ReflinkPool | null = null
    for (const other of list) {
      if (other === this) continue
      const rel = relative(other.dirPath, this.dirPath)
      const inside = rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
      if (inside && (!best || other.dirPath.length > best.dirPath.length)) best = other
    }
    return best
  }

  /** Wait for running operations, then refuse new ones. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.inflight.size) await Promise.allSettled([...this.inflight])
    this.volumes.clear()
    this.sorted = null
    if (this.session) {
      await this.files.remove(this.session).catch(() => {}) // the pool's disk may be gone
      OPEN_SESSIONS.delete(basename(this.session))
      this.session = null
    }
    this.files.close()
  }

  /** `await using pool = await ReflinkPool.open(...)`: the pool is closed when the scope ends. */
  async [asyncDispose](): Promise<void> {
    await this.close()
  }

  /** Run a locked operation of this pool, tracked so close() can wait for it. */
  private run<T>(lockName: string, fn: () => Promise<T>): Promise<T> {
    return this.track(() => this.locks.with(lockName, fn))
  }

  /** Start `op` unless the pool is closed, tracked so close() can wait for it. */
  private track<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(poolClosedError(this.name))
    const p = op()
    this.inflight.add(p)
    const done = () => this.inflight.delete(p)
    p.then(done, done)
    return p
  }

  static {
    guardWhileOpen(ReflinkPool, POOL_CALLS, (pool) => (pool.closed ? pool.name : null))
  }
}
const _allPoolCallsGuarded: Unguarded<ReflinkPool, typeof POOL_CALLS, 'close'> extends never ? true : never = true
