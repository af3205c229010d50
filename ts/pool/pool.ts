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
import { PoolFiles, lstatOrNull } from './files'
import { Store, type StoredPoolConfig } from './store'
import { Locks, SELF_OWNER } from './lock'
import { recover, type RecoveryReport } from './recovery'
import { ReflinkVolume } from './volume'
import { parseVid, VID_PREFIXES } from './vid'
import { lockFileName, sessionFileName } from './names'
import { poolError, hasCode } from './fail'
import { asyncDispose } from '../dispose'
import { checkBoolean, checkRevisionsToKeep, checkSize, checkString } from './args'
import type { PoolContext } from './context'
import { DRIVER, type PoolConfig, type PoolOptions, type UsageDetails, type VolumeOptions, type VolumeRecord } from './types'

const rmdirCb = promisify(fs.rmdir)

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
      forget: (vid) => this.forget(vid),
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

    const files = new PoolFiles(dirPath)
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
      await ReflinkPool.setup(files, store, dirPath, setupCheck)
      await store.writePool(stored)
    }
    const pool = new ReflinkPool(dirPath, stored, files, store, new Locks(store.paths.locks))
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

  /** Create dirPath (and missing parents); check reflink support; on refusal remove what we created. */
  private static async setup(files: PoolFiles, store: Store, dirPath: string, setupCheck: boolean): Promise<void> {
    const created: string[] = []
    for (let d = dirPath; !(await lstatOrNull(d)); d = dirname(d)) created.push(d)
    await files.ensureDir(dirPath)
    if (setupCheck && !(await files.isReflinkSupported(dirPath))) {
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
    const record = this.volumeRecord(options)
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

  /** Validate createVolume options into a record (no I/O). */
  private volumeRecord(o: VolumeOptions): VolumeRecord {
    if (typeof o !== 'object' || o === null) throw poolError('ERR_INVALID_ARG_TYPE', 'createVolume needs a volume config object')
    const name = checkString(o.name, 'name')
    let vid = o.vid
    if (vid === undefined) {
      if (typeof o.vm !== 'object' || o.vm === null) {
        throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${name}: give either vid or vm { name, dirPathPrefix }`)
      }
      vid = `${o.vm.dirPathPrefix}/${o.vm.name}/${name}`
    }
    parseVid(vid)
    const saveOnStop = checkBoolean(o.saveOnStop, 'saveOnStop') ?? false
    const snapOnStart = checkBoolean(o.snapOnStart, 'snapOnStart') ?? false
    const rw = checkBoolean(o.rw, 'rw') ?? true
    let source: string | null = null
    if (o.source !== undefined && o.source !== null) {
      if (o.source instanceof ReflinkVolume && o.source.pool !== this) {
        throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source ${o.source.vid} belongs to another pool`, { vid })
      }
      source = typeof o.source === 'string' ? o.source : o.source.vid
      parseVid(source)
    }
    if (snapOnStart && source === null) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: snapOnStart needs a source volume`, { vid })
    }
    if (!snapOnStart && source !== null) {
      throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid}: source is only valid with snapOnStart`, { vid })
    }
    if (source === vid) throw poolError('ERR_INVALID_ARG_VALUE', `Volume ${vid} cannot be its own source`, { vid })
    return {
      vid,
      name,
      rw,
      saveOnStop,
      snapOnStart,
      source,
      size: o.size === undefined ? 0 : checkSize(o.size, 'size'),
      revisionsToKeep: o.revisionsToKeep === undefined ? null : checkRevisionsToKeep(o.revisionsToKeep, 'revisionsToKeep'),
    }
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
      const st = await this.files.fsStats(this.dirPath)
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
  }

  /** `await using pool = await ReflinkPool.open(...)`: the pool is closed when the scope ends. */
  async [asyncDispose](): Promise<void> {
    await this.close()
  }

  /** Run a locked operation of this pool, tracked so close() can wait for it. */
  private run<T>(lockName: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(poolError('ERR_POOL_CLOSED', `Pool ${this.name} is closed`))
    const p = this.locks.with(lockName, fn)
    this.inflight.add(p)
    const done = () => this.inflight.delete(p)
    p.then(done, done)
    return p
  }
}
