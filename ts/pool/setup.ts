// Opening a pool's directory, before the live ReflinkPool exists (docs/design.md §2-3):
// the options checked, the directory opened (made on first use, with the reflink check
// unless setupCheck is false), its layout made, and the persisted configuration read
// and updated with what this open was given. pool.ts then starts the session, loads
// the records and recovers.
import * as fs from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { promisify } from 'node:util'
import { PoolFiles } from '../store/files'
import { Store, type StoredPoolConfig } from '../store/records'
import { VID_PREFIXES } from '../store/vid'
import { poolError, hasCode } from '../store/fail'
import { optional, validateBoolean, validateObject, validateOptions, validatePath, validateRevisionsToKeep, validateString } from '../validate'
import { validateMinFree } from '../store/space'
import { DRIVER, type MinFree, type PoolOptions } from '../store/types'

/** A pool directory open and laid out, with its configuration as this open leaves it. */
export interface PreparedPool {
  dirPath: string
  files: PoolFiles
  store: Store
  stored: StoredPoolConfig
}

const POOL_OPTION_KEYS = ['dirPath', 'name', 'revisionsToKeep', 'setupCheck', 'ephemeralVolatile', 'minFree'] as const

const rmdirCb = promisify(fs.rmdir)
const lstatCb = promisify(fs.lstat)

/**
 * Check `options`, open the pool directory (creating it and its parents on first
 * use) and bring its layout and configuration up to date. On failure the directory
 * handle is closed and the directories this call created are removed.
 */
export async function preparePool(options: PoolOptions): Promise<PreparedPool> {
  if (options === undefined) validateObject('options', options)
  const o = validateOptions('options', options, POOL_OPTION_KEYS)
  validatePath('options.dirPath', o.dirPath)
  const dirPath = resolve(o.dirPath)
  const name = optional<string>('options.name', o.name, validateString)
  const revisionsToKeep = optional<number>('options.revisionsToKeep', o.revisionsToKeep, validateRevisionsToKeep)
  const setupCheck = optional<boolean>('options.setupCheck', o.setupCheck, validateBoolean) ?? true
  const ephemeralVolatile = optional<boolean>('options.ephemeralVolatile', o.ephemeralVolatile, validateBoolean)
  const minFree = optional<MinFree>('options.minFree', o.minFree, (n, v) => validateMinFree(n, v))

  const created = await missingDirs(dirPath)
  const files = await PoolFiles.open(dirPath, true)
  try {
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
      if (minFree !== undefined) stored = withMinFree(stored, minFree)
      // Records from before volumes kept their own revisionsToKeep get the
      // default they followed until now, not the one given to this open.
      store.legacyRevisionsToKeep = existing.revisionsToKeep
      await makeDirs(files, store)
      if (JSON.stringify(stored) !== JSON.stringify(existing)) await store.writePool(stored)
    } else {
      stored = {
        name: name ?? basename(dirPath),
        driver: DRIVER,
        revisionsToKeep: revisionsToKeep ?? 1,
        ephemeralVolatile: ephemeralVolatile ?? false,
      }
      if (minFree !== undefined) stored = withMinFree(stored, minFree)
      store.legacyRevisionsToKeep = stored.revisionsToKeep
      await setup(files, store, dirPath, setupCheck, created)
      await store.writePool(stored)
    }
    return { dirPath, files, store, stored }
  } catch (e) {
    files.close() // now, not at garbage collection: the filesystem can be unmounted right away
    throw e
  }
}

/** `stored` with the floor `minFree` (0 drops the field: pool.json stays as older versions wrote it). */
export function withMinFree(stored: StoredPoolConfig, minFree: MinFree): StoredPoolConfig {
  const { minFree: _old, ...rest } = stored
  return minFree === 0 || minFree === '0%' ? rest : { ...rest, minFree }
}

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

/** Check reflink support of the new pool; on refusal remove the directories open created (`created`; preparePool then closes the handle). */
async function setup(files: PoolFiles, store: Store, dirPath: string, setupCheck: boolean, created: string[]): Promise<void> {
  if (setupCheck && !(await files.isReflinkSupported())) {
    for (const d of created) await rmdirCb(d).catch(() => {})
    throw poolError(
      'ERR_REFLINK_UNSUPPORTED',
      `The filesystem of ${dirPath} does not support reflinks. If you can live with slow volume starts and wasted disk space (full copies), pass setupCheck: false.`,
      { path: dirPath },
    )
  }
  await makeDirs(files, store)
}

async function makeDirs(files: PoolFiles, store: Store): Promise<void> {
  // All at once (each mkdir -p takes an existing or concurrently made parent as it is):
  // one round trip to the threadpool at every open, not seven in a row.
  // states and partials are made here, not by the first commit or cut receive: a refused call leaves no directory behind.
  const { volumes, locks, sessions, states, partials } = store.paths
  await Promise.all([...VID_PREFIXES.map((p) => resolve(files.root, p)), volumes, locks, sessions, states, partials].map((d) => files.ensureDir(d)))
}
