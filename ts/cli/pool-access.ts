// Opening the pool a command works on. The library is imported lazily so that
// --help/--version never load the native binding.
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { CLI_CODES, CliError, UsageError } from './errors'
import { ReflinkPoolError } from '../errors'
import type { GlobalOptions } from './output'
import { painter } from '../util/style'

export type PoolModule = typeof import('../pool')
export type Pool = Awaited<ReturnType<PoolModule['ReflinkPool']['open']>>
export type Volume = Awaited<ReturnType<Pool['getVolume']>>

export function loadPoolModule(): PoolModule {
  return require('../pool') as PoolModule
}

/** The pool directory from --pool or $REFLINK_POOL_DIR, made absolute. */
export function poolDir(opts: GlobalOptions): string {
  const dir = opts.pool ?? process.env.REFLINK_POOL_DIR
  if (!dir) throw new UsageError('no pool given: use --pool DIR or set REFLINK_POOL_DIR')
  return resolve(dir)
}

/**
 * Open an existing pool. Unlike `ReflinkPool.open`, this never creates one:
 * a typo in --pool must not silently make an empty pool (that is `init`'s job).
 */
export async function openExistingPool(opts: GlobalOptions): Promise<Pool> {
  const dirPath = poolDir(opts)
  if (!isPoolDir(dirPath)) {
    throw new CliError(`no pool at ${dirPath} (create one with: reflink-pool --pool ${dirPath} init)`, CLI_CODES.poolNotFound)
  }
  const pool = await loadPoolModule().ReflinkPool.open({ dirPath })
  const paint = painter(process.stderr)
  for (const w of pool.warnings) process.stderr.write(paint('warning', `reflink-pool: warning: ${w}`) + '\n')
  return pool
}

/**
 * A pool directory has the subfolders that setup creates (docs/design.md §2).
 * One this user may not enter (a pool is 0700, its owner's) is not "no pool":
 * that throws EACCES saying whose it is, rather than let the caller suggest an
 * init that would fail too.
 */
export function isPoolDir(dirPath: string): boolean {
  try {
    if (!statSync(dirPath).isDirectory()) return false
    statSync(resolve(dirPath, 'appvms')) // the stat that meets a pool closed to this user
    return existsSync(resolve(dirPath, 'vm-templates'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw permissionDenied(dirPath)
    return false
  }
}

function permissionDenied(dirPath: string): ReflinkPoolError {
  let whose = '' // unknown when a directory above it is closed too
  try {
    const st = statSync(dirPath)
    whose = ` (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`
  } catch {}
  return new ReflinkPoolError('EACCES', `permission denied: cannot enter the pool ${dirPath}${whose}; run as its owner or root`, { path: dirPath, syscall: 'stat' })
}

/** Run `fn` with an open pool and close it afterwards, whatever happens. */
export async function withPool<T>(opts: GlobalOptions, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = await openExistingPool(opts)
  try {
    return await fn(pool)
  } finally {
    await pool.close()
  }
}
