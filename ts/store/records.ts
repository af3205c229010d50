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
//
// Reading is defensive (docs/design.md §2): metadata files are read through the
// pool's directory handle (files.ts: never through a symlink, never a FIFO or
// device), and every record and pool.json is checked against its
// schema (known fields only, types, ranges, safe integers). A record that
// fails makes that one volume broken (listed, refused on use with
// ERR_VOLUME_BROKEN); messages say which rule failed, never what the file holds.
import { join } from 'node:path'
import { DRIVER, type PoolConfig, type VolumeRecord } from './types'
import { metaPaths, recordFileName, importMarkFileName, parseMetaName, statesFileName } from './names'
import type { PoolFiles } from './files'
import { hasCode, poolError } from './fail'
import { isValidVid } from './vid'
import { ReflinkPoolError } from '../errors'

/** How recent a directory change must be for its mtime to be distrusted (file times are tick-granular). */
const RACY_NS = 2_000_000_000n

/** pool.json: the configuration without the directory; minFree only when set (older versions wrote none). */
export type StoredPoolConfig = Omit<PoolConfig, 'dirPath' | 'minFree'> & Partial<Pick<PoolConfig, 'minFree'>>

const FORMAT = 1

/** A record that could not be used: which rule it broke (never its contents). */
export interface BrokenRecord {
  vid: string
  broken: string
}

/** What reading a record gives: the record, or why it is broken. */
export type LoadedRecord = VolumeRecord | BrokenRecord

export const isBroken = (r: LoadedRecord): r is BrokenRecord => 'broken' in r

/** A record or pool.json is small; a larger one is refused unread. */
const MAX_META_BYTES = 1 << 20
/** Bound of the records cache (about 250 bytes per volume: 1 GiB is millions of volumes). */
const MAX_CACHE_BYTES = 1 << 30

/**
 * Read a metadata file through the pool's directory handle (never through a
 * symlink, never a FIFO or device: files.ts): null when missing, `{ problem }`
 * when it is a symlink, not a regular file, unreadable or too large. The
 * problem is a fixed phrase: nothing of the file (or of where a symlink
 * points) reaches a message.
 */
export async function readMetaFile(files: PoolFiles, path: string, maxBytes = MAX_META_BYTES): Promise<{ text: string } | { problem: string } | null> {
  try {
    const text = await files.readText(path, maxBytes)
    return text === null ? null : { text }
  } catch (e) {
    if (hasCode(e, 'ERR_UNSAFE_PATH', 'ELOOP')) return { problem: 'is a symlink or not a regular file' }
    if (hasCode(e, 'ERR_NOT_REGULAR_FILE', 'EISDIR', 'ENXIO', 'ENODEV')) return { problem: 'is not a regular file' }
    if (hasCode(e, 'ERR_INVALID_ARG_VALUE', 'EFBIG')) return { problem: `is larger than ${maxBytes} bytes` }
    if (hasCode(e, 'EACCES', 'EPERM')) return { problem: 'cannot be read (permission denied)' }
    throw e
  }
}

type Check = (v: unknown) => string | null

/** Field -> check, with its entries listed once (records are checked by the ten thousand at open). */
interface Schema {
  checks: Record<string, Check>
  entries: ReadonlyArray<[string, Check]>
}
const schema = (checks: Record<string, Check>): Schema => ({ checks, entries: Object.entries(checks) })

const isSafeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v)
const boolean: Check = (v) => (typeof v === 'boolean' ? null : 'is not a boolean')
const nonEmptyString: Check = (v) => (typeof v === 'string' && v !== '' && v.length <= 4096 ? null : 'is not a non-empty string')
const size: Check = (v) => (isSafeInt(v) && v >= 0 ? null : 'is not a safe non-negative integer')
const revisions: Check = (v) => (isSafeInt(v) && v >= -1 ? null : 'is not a safe integer >= -1')

/**
 * Check `raw` (parsed JSON) against `schema` (field -> check; optional fields
 * may be absent). The answer names the rule and the field, never a value.
 */
function schemaProblem(raw: unknown, schema: Schema, optional: readonly string[]): string | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return 'is not a JSON object'
  const obj = raw as Record<string, unknown>
  for (const key in obj) if (!Object.hasOwn(schema.checks, key)) return 'has a field this version does not know'
  for (const [key, check] of schema.entries) {
    if (!Object.hasOwn(obj, key)) {
      if (optional.includes(key)) continue
      return `has no field '${key}'`
    }
    const problem = check(obj[key])
    if (problem) return `field '${key}' ${problem}`
  }
  return null
}

/** Parse JSON text; a syntax error's message quotes the text, so only a fixed reason is kept. */
function parseJson(text: string): { value: unknown } | { problem: string } {
  try {
    return { value: JSON.parse(text) }
  } catch {
    return { problem: text.length === 0 ? 'is empty' : 'is not valid JSON (truncated or foreign)' }
  }
}

const POOL_SCHEMA = schema({
  format: (v) => (v === FORMAT ? null : `is not ${FORMAT}`),
  name: nonEmptyString,
  driver: (v) => (v === DRIVER ? null : `is not '${DRIVER}'`),
  revisionsToKeep: revisions,
  ephemeralVolatile: boolean,
  minFree: (v) => (isSafeInt(v) && v >= 0) || (typeof v === 'string' && /^\d{1,3}(\.\d{1,6})?%$/.test(v) && Number(v.slice(0, -1)) <= 100) ? null : "is not a byte count or a percentage such as '10%'",
})

/** Validate the text of pool.json; throws ERR_POOL_BROKEN naming the rule it broke. */
function parsePool(text: string, path: string): StoredPoolConfig {
  const json = parseJson(text)
  const problem = 'problem' in json ? json.problem : schemaProblem(json.value, POOL_SCHEMA, ['minFree'])
  if (problem !== null) throw poolBroken(path, problem)
  const raw = (json as { value: StoredPoolConfig }).value
  return {
    name: raw.name,
    driver: DRIVER,
    revisionsToKeep: raw.revisionsToKeep,
    ephemeralVolatile: raw.ephemeralVolatile,
    ...(raw.minFree !== undefined && raw.minFree !== 0 && { minFree: raw.minFree }),
  }
}

function poolBroken(path: string, problem: string): Error {
  return poolError(
    'ERR_POOL_BROKEN',
    `The pool configuration ${path} ${problem}; the pool cannot be opened. Restore it from a backup, or move it away and open the directory again (its volumes must then be adopted)`,
    { path },
  )
}

export class Store {
  readonly paths: ReturnType<typeof metaPaths>
  /**
   * revisionsToKeep given to records written before volumes stored their own
   * (the pool's persisted default when this pool was opened); the vids that
   * got it are in `unmigrated` until their record is rewritten.
   */
  legacyRevisionsToKeep = 1
  readonly unmigrated = new Set<string>()

  constructor(private readonly files: PoolFiles, dirPath: string) {
    this.paths = metaPaths(dirPath)
  }

  /** The persisted pool configuration, or null when there is none; ERR_POOL_BROKEN when it is unusable. */
  async readPool(): Promise<StoredPoolConfig | null> {
    const read = await readMetaFile(this.files, this.paths.poolConfig)
    if (read === null) return null
    if ('problem' in read) throw poolBroken(this.paths.poolConfig, read.problem)
    return parsePool(read.text, this.paths.poolConfig)
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

  /**
   * The metadata files of `vid` beside its record, which go when the volume goes: its
   * state identities, its partial receive's record and its import marker.
   */
  sideFiles(vid: string): string[] {
    // Plain concatenation (the directories are absolute and normalized, the names have no `/`):
    // a batch asks this for a thousand vids.
    const key = statesFileName(vid)
    return [`${this.paths.states}/${key}`, `${this.paths.partials}/${key}`, `${this.paths.locks}/${importMarkFileName(vid)}`]
  }

  /** The record of `vid` (or why it is broken); null when there is none. */
  async readVolume(vid: string): Promise<LoadedRecord | null> {
    const read = await readMetaFile(this.files, this.recordPath(vid))
    if (read === null) return null
    return 'problem' in read ? { vid, broken: `its record ${read.problem}` } : this.parseRecord(read.text, vid)
  }

  async writeVolume(rec: VolumeRecord): Promise<void> {
    await this.files.writeFile(this.recordPath(rec.vid), recordText(rec))
    this.unmigrated.delete(rec.vid)
  }

  async removeVolume(vid: string): Promise<void> {
    await this.files.remove(this.recordPath(vid))
    this.unmigrated.delete(vid)
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
   * source of truth: it is rebuilt from the records whenever it does not match,
   * and it is written only when every record is valid and current (none
   * broken, unfinished or waiting for migration).
   */
  async loadAll(): Promise<LoadedRecord[]> {
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
    const cacheable = records.every((r) => !isBroken(r) && !r.creating && !this.unmigrated.has(r.vid))
    if (settled && cacheable && after.mtimeNs === st.mtimeNs) await this.writeCache(st.mtimeNs, records as VolumeRecord[]).catch(() => {})
    return records
  }

  private async readCache(mtimeNs: bigint): Promise<VolumeRecord[] | null> {
    try {
      const read = await readMetaFile(this.files, this.paths.recordsCache, MAX_CACHE_BYTES)
      const cache = read === null || 'problem' in read ? null : JSON.parse(read.text)
      if (cache?.format !== FORMAT || cache.mtimeNs !== String(mtimeNs) || !Array.isArray(cache.records)) return null
      const out: VolumeRecord[] = []
      for (const r of cache.records as unknown[]) {
        const vid = (r as { vid?: unknown } | null)?.vid
        if (typeof vid !== 'string' || !isValidVid(vid)) return null
        const rec = this.parseValue(r, vid, false)
        if (isBroken(rec) || rec.creating) return null
        out.push(rec)
      }
      return out
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
  async readVolumes(vids: string[]): Promise<LoadedRecord[]> {
    const out = await Promise.all(vids.map((vid) => this.readVolume(vid)))
    return out.filter((r): r is LoadedRecord => r !== null)
  }

  /** A record's text checked against the schema; the vid comes from the (validated) file name. */
  private parseRecord(text: string, vid: string): LoadedRecord {
    const json = parseJson(text)
    return 'problem' in json ? { vid, broken: `its record ${json.problem}` } : this.parseValue(json.value, vid, true)
  }

  /**
   * A parsed record checked against the schema. A record without
   * revisionsToKeep (written before volumes kept their own) gets
   * `legacyRevisionsToKeep` when `legacy` is allowed, and is noted for migration.
   */
  private parseValue(raw: unknown, vid: string, legacy: boolean): LoadedRecord {
    const problem = schemaProblem(raw, RECORD_SCHEMA, legacy ? ['vid', 'creating', 'revisionsToKeep'] : ['vid', 'creating'])
    if (problem !== null) return { vid, broken: `its record ${problem}` }
    const r = raw as Omit<VolumeRecord, 'revisionsToKeep'> & { revisionsToKeep?: number | null }
    if (r.vid !== undefined && r.vid !== vid) return { vid, broken: 'its record names another volume' }
    if (r.snapOnStart !== (r.source !== null)) return { vid, broken: 'its record has a source without snapOnStart, or snapOnStart without a source' }
    let revisionsToKeep = r.revisionsToKeep
    if (revisionsToKeep === undefined || revisionsToKeep === null) {
      if (!legacy) return { vid, broken: "its record has no field 'revisionsToKeep'" }
      revisionsToKeep = this.legacyRevisionsToKeep
      this.unmigrated.add(vid)
    }
    return {
      vid,
      name: r.name,
      rw: r.rw,
      saveOnStop: r.saveOnStop,
      snapOnStart: r.snapOnStart,
      source: r.source,
      size: r.size,
      revisionsToKeep,
      ...(r.creating && { creating: true as const }),
    }
  }
}

/** A record's file contents (also written by batches, docs/design.md §7). */
export function recordText(rec: VolumeRecord): string {
  return JSON.stringify(rec) + '\n'
}

const RECORD_SCHEMA = schema({
  vid: (v) => (typeof v === 'string' ? null : 'is not a string'),
  name: nonEmptyString,
  rw: boolean,
  saveOnStop: boolean,
  snapOnStart: boolean,
  source: (v) => (v === null || (typeof v === 'string' && isValidVid(v)) ? null : 'is not null or a valid volume id'),
  size,
  // null: written by versions where a volume followed the pool's setting.
  revisionsToKeep: (v) => (v === null ? null : revisions(v)),
  creating: (v) => (v === true ? null : 'is not true'),
})
