// What a volume and the store need from their pool, as an interface so that
// nothing below ts/pool imports it (docs/design.md §1): the pool creates
// volumes; volumes call back through this.
import type { PoolFiles } from './files'
import type { Store } from './records'
import type { MinFree } from './types'

/** What the store and a volume read of their pool's settings (it is a ReflinkPool). */
export interface PoolView {
  readonly name: string
  readonly minFree: MinFree
  readonly ephemeralVolatile: boolean
}

export interface PoolContext {
  readonly pool: PoolView
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
  /** The pool's name once it is closed (every call is then refused, open-guard.ts), else null. */
  closedName(): string | null
  /** Mark a file of the sessions directory as belonging to a live operation of this process; returns the unmark. */
  markLive(fileName: string): () => void
}
