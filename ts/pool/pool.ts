// ReflinkPool (driver `file-reflink`, SPEC §3.1): setup, persisted
// configuration, the volume registry, recovery at open.
//
// The registry is a cache of the per-volume records on disk (store.ts):
// listVolumes() re-reads the directory of records, so volumes created or
// removed by another process show up; loadVolume() re-reads one record;
// getVolume() answers from the cache (synchronously).
import * as fs from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { PoolFiles } from './files'
import { Store, type StoredPoolConfig } from './store'
import { Locks, SELF_OWNER } from './lock'
import { recover, type RecoveryReport } from './recovery'
import { ReflinkVolume } from './volume'
import { parseVid, VID_PREFIXES } from './vid'
import { lockFileName, sessionFileName } from './names'
import { poolError, hasCode } from './fail'
import { asyncDispose } from '../dispose'
import { checkBoolean, checkRevisionsToKeep, checkString } from './args'
import type { PoolContext } from './context'
import { volumeRecord } from './volume-options'
import { cloneVolumes, createVolumes, startVolumes, stopVolumes, type BatchOptions, type BatchReport, type CloneVolumesOptions } from './batch'
import { DRIVER, type PoolConfig, type PoolOptions, type UsageDetails, type VolumeOptions } from './types'

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

export class ReflinkPool {
  readonly driver = DRIVER
  /** What recovery did when this pool was opened. */
  readonly recovery: RecoveryReport = { fullScan: false, recovered: [], removed: [] }

  private readonly volumes = new Map<string, ReflinkVolume>()
  /** listVolumes() order, rebuilt only after the set of volumes changed. */
  private sorted: ReflinkVolume[] | null = null
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly ctx: PoolContext
  private closed = false
  /** This instance's session file (see startSession). */
  private session: string | null = null

  private constructor(
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
      remember: (volume) => this.remember(volume),
      cached: (vid) => this.volumes.has(vid),
      markLive: (fileName) => {
        OPEN_SESSIONS.add(fileName)
        return () => OPEN_SESSIONS.delete(fileName)
      },
    }
  }

  /**
   * Open the pool at `dirPath`, creating it on first use (SPEC §3.1 setup,
   * with the reflink check unless `setupCheck: false`), then load its volumes
   * and recover from crashed operations. Options given when reopening an
   * existing pool replace the persisted ones.
   */
  static async open(options: PoolOptions): Promise<ReflinkPool> {
    if (typeof options !== 'object' || options === null) {
      throw poolError('ERR_INVALID_ARG_TYPE', 'ReflinkPool.open needs an options object with dirPath')
    }
    const dirPath = resolve(checkString(options.dirPath, 'dirPath'))
    const name = options.name === undefined ? undefined : checkString(options.name, 'name')
    const revisionsToKeep =
      options.revisionsToKeep === undefined ? undefined : checkRevisionsToKeep(options.revisionsToKeep, 'revisionsToKeep')
    const setupCheck = checkBoolean(options.setupCheck, 'setupCheck') ?? true
    const ephemeralVolatile = checkBoolean(options.ephemeralVolatile, 'ephemeralVolatile')

    const created = await missingDirs(dirPath)
    const files = await PoolFiles.open(dirPath, true)
    const store = new Store(files, dirPath)
    const existing = (await files.checkDir(store.paths.meta)) && (await files.image(store.paths.poolConfig)) ? await store.readPool() : null
    let stored: StoredPoolConfig
    if (existing) {
      stored = {
        ...existing,
        ...(name !== undefined && { name }),
        ...(revisionsToKeep !== undefined && { revisionsToKeep }),
        ...(ephemeralVolatile !== undefined && { ephemeralVolatile }),
      }
      await ReflinkPool.makeDirs(files, store)
      if (JSON.stringify(stored) !== JSON.stringify(existing)) await store.writePool(stored)
    } else {
      stored = {
        name: name ?? basename(dirPath),
        driver: DRIVER,
        revisionsToKeep: revisionsToKeep ?? 1,
        ephemeralVolatile: ephemeralVolatile ?? false,
      }
      await ReflinkPool.setup(files, store, dirPath, setupCheck, created)
      await store.writePool(stored)
    }
    const pool = new ReflinkPool(dirPath, stored, files, store, new Locks(files, store.paths.locks))
    await pool.startSession()
    try {
      for (const rec of await store.loadAll()) pool.remember(new ReflinkVolume(pool.ctx, rec))
      Object.assign(pool.recovery, await recover(pool.ctx, (name) => OPEN_SESSIONS.has(name)))
    } catch (e) {
      await pool.close()
      throw e
    }
    return pool
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
    await this.files.writeFile(this.session, SELF_OWNER + '\n')
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

  get name(): string {
    return this.stored.name
  }
  get revisionsToKeep(): number {
    return this.stored.revisionsToKeep
  }
  get ephemeralVolatile(): boolean {
    return this.stored.ephemeralVolatile
  }
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
   * anything is written; if create() fails the record is removed again.
   */
  async createVolume(options: VolumeOptions): Promise<ReflinkVolume> {
    const record = volumeRecord(this, options)
    if (this.volumes.has(record.vid)) throw this.exists(record.vid)
    return this.run(lockFileName(record.vid), async () => {
      if (await this.store.readVolume(record.vid)) throw this.exists(record.vid)
      if (record.source !== null && !(await this.store.readVolume(record.source))) {
        throw poolError('ERR_UNKNOWN_VOLUME', `Source ${record.source} of volume ${record.vid} is not a volume of pool ${this.name}`, {
          vid: record.vid,
        })
      }
      const volume = new ReflinkVolume(this.ctx, record)
      await volume.createFiles()
      // The record last: a crash before it leaves at most files that the next create() removes.
      await this.store.writeVolume(record)
      this.remember(volume)
      return volume
    })
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
    if (!rec) {
      this.forget(vid)
      throw poolError('ERR_UNKNOWN_VOLUME', `No volume ${vid} in pool ${this.name}`, { vid })
    }
    const cached = this.volumes.get(vid)
    if (cached) return cached
    const volume = new ReflinkVolume(this.ctx, rec)
    this.remember(volume)
    return volume
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
    for (const rec of await this.store.readVolumes(fresh)) this.remember(new ReflinkVolume(this.ctx, rec))
  }

  private remember(volume: ReflinkVolume): void {
    this.volumes.set(volume.vid, volume)
    this.sorted = null
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

  async size(): Promise<number | null> {
    return (await this.usageDetails()).dataSize ?? null
  }

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
