// Per-volume locks that serialise mutating calls inside one process AND
// across processes sharing a pool (docs/design.md §4, Locks).
//
// Why flock: the kernel releases a flock when its holder dies and wakes the
// next waiter, so there is no stale-lock breaking and no polling. The lock is
// flock(2) on `<pool>/.reflink-pool/locks/<vid>.lock` (native `VolumeLock`,
// crates/core/src/lock.rs), opened through the pool's directory handle by
// PoolFiles.lockFile. Callers in one process first wait in the in-process
// queue (queue.ts). The file exists only while held: release unlinks it under
// the lock (a waiter that locked the unlinked inode retries). A lock file whose
// flock is free was therefore left by a process that died during an operation:
// that is how `open` finds volumes to clean (recovery.ts).
//
// Session files and import markers are not flocked: they record their owner
// and are judged by its liveness (owner.ts).
// Lock files are not fsynced: a lock file lost with the power does not hide
// leftovers, because the durable session file of the crashed process makes the
// next open scan the whole pool (recovery.ts).
import { unwrap } from '../outcome'
import type { PoolFiles } from './files'
import { queued, queuedMany } from './queue'

/** Take the lock file `path` (waiting for another process's holder), run `fn`, release. */
async function acrossProcesses<T>(files: PoolFiles, path: string, fn: () => Promise<T>): Promise<T> {
  const lock = files.lockFile(path)
  await unwrap(lock.acquire())
  try {
    return await fn()
  } finally {
    // The fd is closed even when unlinking fails; a file left behind only makes
    // the next open look at this volume (as after a crash), so `fn`'s result stands.
    await unwrap(lock.release()).catch(() => {})
  }
}

/**
 * Whether the lock file `path` was left by a dead holder: nobody holds its
 * flock (taking it succeeds; it is released, and its file removed, at once).
 */
export async function lockAbandoned(files: PoolFiles, path: string): Promise<boolean> {
  const lock = files.lockFile(path)
  if (!(await unwrap(lock.tryAcquire()))) return false
  await unwrap(lock.release())
  return true
}

export class Locks {
  constructor(private readonly files: PoolFiles, readonly dir: string) {}

  /** Hold the lock named `fileName` (in this process and across processes) while `fn` runs. */
  with<T>(fileName: string, fn: () => Promise<T>): Promise<T> {
    const path = this.path(fileName)
    return queued(path, () => acrossProcesses(this.files, path, fn))
  }

  /**
   * Hold the in-process queues of many locks while `fn` runs; `fn` is a batch
   * task that takes their flocks itself (docs/design.md §7), so its blocking
   * waits only ever wait for other processes.
   */
  withInProcess<T>(fileNames: string[], fn: () => Promise<T>): Promise<T> {
    return queuedMany(fileNames.map((n) => this.path(n)), fn)
  }

  /** The lock file's path, the key of its in-process queue (`with` and `withInProcess` alike): `dir` is normalized and a name has no `/`, so this is join's result without its cost per name (a batch takes a thousand). */
  private path(fileName: string): string {
    return `${this.dir}/${fileName}`
  }
}
