// What a volume needs from its pool, as an interface so volume.ts does not
// import pool.ts at runtime (the pool creates volumes; volumes call back).
import type { PoolFiles } from './files'
import type { Store } from './store'
import type { ReflinkPool } from './pool'

export interface PoolContext {
  readonly pool: ReflinkPool
  readonly dirPath: string
  readonly files: PoolFiles
  readonly store: Store
  /** Run `fn` holding the lock file `lockName` (in-process and cross-process). */
  run<T>(lockName: string, fn: () => Promise<T>): Promise<T>
  /** Run a batch holding the in-process queues of `lockNames` (the batch task takes their flocks). */
  runBatch<T>(lockNames: string[], fn: () => Promise<T>): Promise<T>
  /** Drop a removed volume from the pool's cache. */
  forget(vid: string): void
  /** Whether the pool's cache knows volume `vid`. */
  cached(vid: string): boolean
  /** Add the record of a volume made by a batch to the pool's cache; returns its volume. */
  remember(rec: import('./types').VolumeRecord): import('./volume').ReflinkVolume
  /** The pool's name once it is closed (every call is then refused, open-guard.ts), else null. */
  closedName(): string | null
  /** Mark a file of the sessions directory as belonging to a live operation of this process; returns the unmark. */
  markLive(fileName: string): () => void
}
