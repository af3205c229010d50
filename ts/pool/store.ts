// Persisted configuration: `.reflink-pool/pool.json` for the pool and one small
// JSON record per volume in `.reflink-pool/volumes/`.
//
// One file per volume rather than one pool index: creating or removing a
// volume rewrites ~200 bytes instead of the whole index (an index of 10 000
// volumes would be rewritten, fsync and all, on every create), writers of
// different volumes never contend, and each record is written under its own
// volume lock. Opening reads one cache file when the record directory is
// unchanged (see loadAll), else the records in parallel (0.3-0.7 s for 10 000
// here, with callback fs.readFile: fs.promises.readFile is 8x slower).
// Every write is atomic and durable (temp + fsync + rename + dir fsync), so a
// crash leaves either the old or the new record, never a torn one.
import { join } from 'node:path'
import { DRIVER, type PoolConfig, type VolumeRecord } from './types'
import { metaPaths, recordFileName, importMarkFileName, parseMetaName } from './names'
import type { PoolFiles } from './files'
import { isValidVid } from './vid'
import { ReflinkPoolError } from '../errors'

/** How recent a directory change must be for its mtime to be distrusted (file times are tick-granular). */
const RACY_NS = 2_000_000_000n

export type StoredPoolConfig = Omit<PoolConfig, 'dirPath'>

const FORMAT = 1

/** Bound of the records cache (about 250 bytes per volume: 1 GiB is millions of volumes). */
const MAX_CACHE_BYTES = 1 << 30

export class Store {
  readonly paths: ReturnType<typeof metaPaths>

  constructor(private readonly files: PoolFiles, dirPath: string) {
    this.paths = metaPaths(dirPath)
  }

  async readPool(): Promise<StoredPoolConfig | null> {
    const text = await this.files.readText(this.paths.poolConfig)
    if (text === null) return null
    const raw = JSON.parse(text)
    return {
      name: String(raw.name),
      driver: DRIVER,
      revisionsToKeep: Number(raw.revisionsToKeep),
      ephemeralVolatile: raw.ephemeralVolatile === true,
    }
  }

  async writePool(cfg: StoredPoolConfig): Promise<void> {
    await this.files.writeFile(this.paths.poolConfig, JSON.stringify({ format: FORMAT, ...cfg }, null, 2) + '\n')
  }

  recordPath(vid: string): string {
    return join(this.paths.volumes, recordFileName(vid))
  }

  /** The marker of an import in progress into `vid` (kept beside the lock files, read by recovery). */
  importMarkPath(vid: string): string {
    return join(this.paths.locks, importMarkFileName(vid))
  }

  async readVolume(vid: string): Promise<VolumeRecord | null> {
    const text = await this.files.readText(this.recordPath(vid))
    return text === null ? null : parseRecord(text, vid)
  }

  async writeVolume(rec: VolumeRecord): Promise<void> {
    await this.files.writeFile(this.recordPath(rec.vid), recordText(rec))
  }

  async removeVolume(vid: string): Promise<void> {
    await this.files.remove(this.recordPath(vid))
  }

  /** Record file name -> vid (null: not a loadable record), so a rescan parses only new names. */
  private readonly names = new Map<string, string | null>()
  private scanned: { mtimeNs: bigint } | null = null

  /**
   * The vids that have a record (temps and invalid vids excluded), or null
   * when the record directory is unchanged since the last call. "Unchanged"
   * is judged by the directory's mtime, which every create, rewrite and
   * removal of a record bumps; since file times are tick-granular, a
   * directory changed within the last RACY_NS of our scan is rescanned anyway
   * (the racy-timestamp rule of git's index).
   */
  async listVids(): Promise<string[] | null> {
    const st = await this.volumesDir()
    if (this.scanned && st.mtimeNs === this.scanned.mtimeNs && BigInt(Date.now()) * 1_000_000n - st.mtimeNs > RACY_NS) return null
    const names = await this.files.names(this.paths.volumes)
    this.scanned = { mtimeNs: st.mtimeNs }
    const vids: string[] = []
    const seen = new Set<string>()
    for (const n of names) {
      let vid = this.names.get(n)
      if (vid === undefined) {
        const parsed = parseMetaName(n)
        // A planted record with a vid that leaves the pool is never loaded.
        vid = parsed?.kind === 'record' && isValidVid(parsed.vid) ? parsed.vid : null
        this.names.set(n, vid)
      }
      seen.add(n)
      if (vid !== null) vids.push(vid)
    }
    for (const n of this.names.keys()) if (!seen.has(n)) this.names.delete(n)
    return vids
  }

  /**
   * Every record, for open. Reading 10 000 record files costs a few hundred
   * ms, so the full list is also kept in `volumes.cache.json`, tagged with the
   * record directory's mtime: while the directory is unchanged (no record
   * created, rewritten or removed: each renames or unlinks in it) and its last
   * change is not racy, that one file is the same data. The cache is never the
   * source of truth: it is rebuilt from the records whenever it does not match.
   */
  async loadAll(): Promise<VolumeRecord[]> {
    const st = await this.volumesDir()
    const settled = BigInt(Date.now()) * 1_000_000n - st.mtimeNs > RACY_NS
    if (settled) {
      const cached = await this.readCache(st.mtimeNs)
      if (cached) {
        this.scanned = { mtimeNs: st.mtimeNs }
        for (const rec of cached) this.names.set(recordFileName(rec.vid), rec.vid)
        return cached
      }
    }
    this.scanned = null
    const records = await this.readVolumes((await this.listVids()) ?? [])
    const after = await this.volumesDir()
    if (settled && after.mtimeNs === st.mtimeNs) await this.writeCache(st.mtimeNs, records).catch(() => {})
    return records
  }

  private async readCache(mtimeNs: bigint): Promise<VolumeRecord[] | null> {
    try {
      const text = await this.files.readText(this.paths.recordsCache, MAX_CACHE_BYTES)
      const cache = text === null ? null : JSON.parse(text)
      if (cache?.format !== FORMAT || cache.mtimeNs !== String(mtimeNs) || !Array.isArray(cache.records)) return null
      return (cache.records as unknown[]).map((r) => parseRecord(JSON.stringify(r), String((r as { vid: unknown }).vid))).filter((r) => isValidVid(r.vid))
    } catch {
      return null // torn or foreign: rebuild from the records
    }
  }

  /** Atomic (temp file + rename); durable too, as every pool write. */
  private async writeCache(mtimeNs: bigint, records: VolumeRecord[]): Promise<void> {
    await this.files.writeFile(this.paths.recordsCache, JSON.stringify({ format: FORMAT, mtimeNs: String(mtimeNs), records }))
  }

  /** The record directory's mtime (ns); ENOENT when it is missing, as a stat would. */
  private async volumesDir(): Promise<{ mtimeNs: bigint }> {
    const st = await this.files.directory(this.paths.volumes)
    if (!st) throw new ReflinkPoolError('ENOENT', `ENOENT: no such file or directory, lstat '${this.paths.volumes}'`, { errno: -2, syscall: 'lstat', path: this.paths.volumes })
    return st
  }

  /** Read the records of `vids` in parallel; records that vanished meanwhile are skipped. */
  async readVolumes(vids: string[]): Promise<VolumeRecord[]> {
    const out = await Promise.all(
      vids.map((vid) => this.files.readText(this.recordPath(vid)).then((text) => (text === null ? null : parseRecord(text, vid)))),
    )
    return out.filter((r): r is VolumeRecord => r !== null)
  }
}

/** A record's file contents (also written by batches, docs/design.md §7). */
export function recordText(rec: VolumeRecord): string {
  return JSON.stringify(rec) + '\n'
}

/** A record as stored; the vid comes from the (validated) file name, a source must be a valid vid too. */
function parseRecord(text: string, vid: string): VolumeRecord {
  const r = JSON.parse(text)
  return {
    vid,
    name: String(r.name),
    rw: r.rw === true,
    saveOnStop: r.saveOnStop === true,
    snapOnStart: r.snapOnStart === true,
    source: typeof r.source === 'string' && isValidVid(r.source) ? r.source : null,
    size: Number(r.size) || 0,
    revisionsToKeep: typeof r.revisionsToKeep === 'number' ? r.revisionsToKeep : null,
  }
}
