// ReflinkPool (driver `file-reflink`, docs/design.md §2-3): setup, persisted
// configuration, the volume registry, adoption of existing images, recovery
// at open.
//
// The registry is a cache of the per-volume records on disk (store.ts):
// listVolumes() re-reads the directory of records, so volumes created or
// removed by another process show up; loadVolume() re-reads one record;
// getVolume() answers from the cache (synchronously).
// A record that fails its schema is kept as a broken volume (listed, refused
// on use), so one bad file never stops the pool from opening.
import * as fs from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { inspect, promisify, type InspectOptions } from 'node:util'
import { PoolFiles } from './files'
import { Store, isBroken, type LoadedRecord, type StoredPoolConfig } from './store'
import { Locks } from './lock'
import { SELF_OWNER } from './owner'
import { recover, undoUnfinishedCreate, type RecoveryReport } from './recovery'
import { ReflinkVolume } from './volume'
import { isValidVid, parseVid, VID_PREFIXES } from './vid'
import { lockFileName, parseImageName, sessionFileName, volumePaths } from './names'
import { volumeFiles } from './images'
import { poolError, hasCode } from './fail'
import { asyncDispose } from '../dispose'
import {
  optional, validateBoolean, validateObject, validateOptions, validatePath, validateRevisionsToKeep, validateString,
} from '../validate'
import type { PoolContext } from './context'
import { volumeRecord } from './volume-options'
import { cloneVolumes, createVolumes, startVolumes, stopVolumes, type BatchOptions, type BatchReport, type CloneVolumesOptions } from './batch'
import {
  DRIVER, type AdoptOptions, type AdoptReport, type PoolConfig, type PoolOptions, type UsageDetails, type VolumeOptions, type VolumeRecord,
} from './types'

const POOL_OPTION_KEYS = ['dirPath', 'name', 'revisionsToKeep', 'setupCheck', 'ephemeralVolatile'] as const

const rmdirCb = promisify(fs.rmdir)
const lstatCb = promisify(fs.lstat)

/** The directories of `dirPath` and its parents that do not exist yet (deepest first). */
async function missingDirs(dirPath: string): Promise<string[]> {
  const missing: string[] = []
  for (let d = dirPath; d !== dirname(d); d = dirname(d)) {
    try {
      await lstatCb(d)
      break
    } catch (e) {
      if (!hasCode(e, 'ENOENT')) throw e
      missing.push(d)
    }
  }
  return missing
}

/** Session file names of the pools open in this process. */
const OPEN_SESSIONS = new Set<string>()

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
  private readonly ctx: PoolContext
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
    if (options === undefined) validateObject('options', options)
    const o = validateOptions('options', options, POOL_OPTION_KEYS)
    validatePath('options.dirPath', o.dirPath)
    const dirPath = resolve(o.dirPath)
    const name = optional<string>('options.name', o.name, validateString)
    const revisionsToKeep = optional<number>('options.revisionsToKeep', o.revisionsToKeep, validateRevisionsToKeep)
    const setupCheck = optional<boolean>('options.setupCheck', o.setupCheck, validateBoolean) ?? true
    const ephemeralVolatile = optional<boolean>('options.ephemeralVolatile', o.ephemeralVolatile, validateBoolean)

    const created = await missingDirs(dirPath)
    const files = await PoolFiles.open(dirPath, true)
    try {
      return await ReflinkPool.load(files, dirPath, created, { name, revisionsToKeep, setupCheck, ephemeralVolatile })
    } catch (e) {
      files.close() // now, not at garbage collection: the filesystem can be unmounted right away
      throw e
    }
  }

  /** The rest of `open`, with the pool directory open (`open` closes it when this fails). */
  private static async load(
    files: PoolFiles,
    dirPath: string,
    created: string[],
    options: { name?: string; revisionsToKeep?: number; setupCheck: boolean; ephemeralVolatile?: boolean },
  ): Promise<ReflinkPool> {
    const { name, revisionsToKeep, setupCheck, ephemeralVolatile } = options
    const store = new Store(files, dirPath)
    const existing = (await files.checkDir(store.paths.meta)) ? await store.readPool() : null
    let stored: StoredPoolConfig
    if (existing) {
      stored = {
        ...existing,
        ...(name !== undefined && { name }),
        ...(revisionsToKeep !== undefined && { revisionsToKeep }),
        ...(ephemeralVolatile !== undefined && { ephemeralVolatile }),
      }
      // Records from before volumes kept their own revisionsToKeep get the
      // default they followed until now, not the one given to this open.
      store.legacyRevisionsToKeep = existing.revisionsToKeep
      await ReflinkPool.makeDirs(files, store)
      if (JSON.stringify(stored) !== JSON.stringify(existing)) await store.writePool(stored)
    } else {
      stored = {
        name: name ?? basename(dirPath),
        driver: DRIVER,
        revisionsToKeep: revisionsToKeep ?? 1,
        ephemeralVolatile: ephemeralVolatile ?? false,
      }
      store.legacyRevisionsToKeep = stored.revisionsToKeep
      await ReflinkPool.setup(files, store, dirPath, setupCheck, created)
      await store.writePool(stored)
    }
    const pool = new ReflinkPool(dirPath, stored, files, store, new Locks(files, store.paths.locks))
    await pool.startSession()
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

  /** Check reflink support of the new pool; on refusal remove the directories open created (`created`). */
  private static async setup(files: PoolFiles, store: Store, dirPath: string, setupCheck: boolean, created: string[]): Promise<void> {
    if (setupCheck && !(await files.isReflinkSupported())) {
      files.close()
      for (const d of created) await rmdirCb(d).catch(() => {})
      throw poolError(
        'ERR_REFLINK_UNSUPPORTED',
        `The filesystem of ${dirPath} does not support reflinks. If you can live with slow volume starts and wasted disk space (full copies), pass setupCheck: false.`,
        { path: dirPath },
      )
    }
    await ReflinkPool.makeDirs(files, store)
  }

  private static async makeDirs(files: PoolFiles, store: Store): Promise<void> {
    for (const prefix of VID_PREFIXES) await files.ensureDir(resolve(files.root, prefix))
    await files.ensureDir(store.paths.volumes)
    await files.ensureDir(store.paths.locks)
    await files.ensureDir(store.paths.sessions)
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
    }
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
    const record = volumeRecord(this, options, { call: 'createVolume' })
    if (this.volumes.has(record.vid)) throw this.exists(record.vid)
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
      if (record.saveOnStop && !record.snapOnStart) {
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
    const record = volumeRecord(this, options, { call: 'adoptVolume', adopt: true })
    if (this.volumes.has(record.vid)) throw this.exists(record.vid)
    return this.run(lockFileName(record.vid), async () => {
      await this.checkNew(record)
      const p = volumePaths(this.dirPath, record.vid)
      if (record.saveOnStop && !record.snapOnStart) {
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
   * (`appvms|vm-templates/<vm>/<name>.img`) and no record, as a save-on-stop
   * volume (adoptVolume). Sets without a clean image (only a dirty image: a
   * running or volatile volume; only revisions) and names that are not valid
   * vids are skipped with the reason. Changes no image; run it with the VMs
   * stopped.
   */
  async adoptAll(): Promise<AdoptReport> {
    const report: AdoptReport = { adopted: [], skipped: [] }
    await this.refresh()
    for (const prefix of VID_PREFIXES) {
      const prefixDir = resolve(this.dirPath, prefix)
      if (!(await this.files.checkDir(prefixDir))) continue
      for (const vm of await this.files.list(prefixDir)) {
        const vmDir = join(prefixDir, vm.name)
        if (!vm.isDirectory()) {
          report.skipped.push({ path: vmDir, reason: vm.kind === 'symlink' ? 'a symlink, not a VM directory' : 'not a VM directory' })
          continue
        }
        const sets = new Map<string, Set<string>>()
        for (const ent of await this.files.list(vmDir)) {
          const parsed = parseImageName(ent.name)
          if (!parsed || parsed.temp) continue
          if (!sets.has(parsed.base)) sets.set(parsed.base, new Set())
          sets.get(parsed.base)!.add(parsed.kind)
        }
        for (const [base, kinds] of [...sets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          const vid = `${prefix}/${vm.name}/${base}`
          const path = join(vmDir, base)
          if (!isValidVid(vid)) {
            report.skipped.push({ path, reason: 'its name is not a valid volume id' })
          } else if (this.volumes.has(vid)) {
            continue // already a volume of the pool
          } else if (!kinds.has('clean')) {
            report.skipped.push({ path, reason: `no clean image (${[...kinds].join(', ')} only): adopt it explicitly with its kind` })
          } else if (!kinds.has('precache') && ((await this.files.image(`${path}.img`))?.nlink ?? 1) > 1) {
            // While its VM runs, the driver hardlinks a snapshot's clean image to its source's; an
            // origin always has a precache beside its clean image (unless snapshots are disabled).
            report.skipped.push({ path, reason: 'its clean image is hardlinked and has no precache (a snapshot of another volume while its VM runs): adopt it explicitly with its kind, or stop the VM first' })
          } else {
            try {
              await this.adoptVolume({ vid, name: base })
              report.adopted.push(vid)
            } catch (e) {
              if (!hasCode(e, 'ERR_VOLUME_EXISTS', 'ERR_UNSAFE_PATH', 'ERR_MISSING_IMAGE')) throw e
              report.skipped.push({ path, reason: `${(e as { code: string }).code}: ${(e as Error).message}` })
            }
          }
        }
      }
    }
    report.adopted.sort()
    report.skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    return report
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
  cloneVolumes(template: ReflinkVolume | string, targets: readonly string[], options?: CloneVolumesOptions): Promise<BatchReport> {
    return cloneVolumes(this.ctx, template, targets, options)
  }

  /** createVolume for many volumes in one batch (all or nothing; see cloneVolumes). */
  createVolumes(configs: readonly VolumeOptions[], options?: BatchOptions): Promise<BatchReport> {
    return createVolumes(this.ctx, configs, options)
  }

  /** start() many volumes: snapshot and save-on-stop volumes in one batch, other kinds a few at a time. Resolves the dirty image paths. */
  startVolumes(volumes: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<string[]> {
    return startVolumes(this.ctx, volumes, options)
  }

  /** stop() many volumes: snapshot volumes in one batch, other kinds a few at a time. */
  stopVolumes(volumes: readonly (ReflinkVolume | string)[], options?: BatchOptions): Promise<void> {
    return stopVolumes(this.ctx, volumes, options)
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
    if (this.closed) return Promise.reject(poolError('ERR_POOL_CLOSED', `Pool ${this.name} is closed`))
    const p = op()
    this.inflight.add(p)
    const done = () => this.inflight.delete(p)
    p.then(done, done)
    return p
  }
}
