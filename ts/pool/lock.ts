// Per-volume locks that serialise mutating calls inside one process AND
// across processes sharing a pool.
//
// In-process: a promise chain per lock file (module-wide, so two pool objects
// on one directory in one process also queue behind each other). The kernel
// would order them too (each acquire opens its own fd), but queueing here
// keeps a process to one waiting native thread per volume.
// Across processes: flock(2) on `<pool>/.reflink-pool/locks/<vid>.lock`
// (native `VolumeLock`, crates/core/src/lock.rs, opened through the pool's
// directory handle by PoolFiles.lockFile). The kernel releases the lock
// when its holder dies and wakes the next waiter, so there is no stale-lock
// breaking and no polling. The file exists only while held: release unlinks it
// under the lock (a waiter that locked the unlinked inode retries). A lock
// file whose flock is free was therefore left by a process that died during
// an operation: that is how `open` finds volumes to clean (recovery.ts).
//
// Session files and import markers are not flocked: they record their owner
// (boot id, pid, process start time) and are judged with `ownerAlive`.
// Lock files are not fsynced: a lock file lost with the power does not hide
// leftovers, because the durable session file of the crashed process makes the
// next open scan the whole pool (recovery.ts).
import * as fs from 'node:fs'
import { join } from 'node:path'
import { unwrap } from '../outcome'
import type { PoolFiles } from './files'

function readOrEmpty(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim()
  } catch {
    return ''
  }
}

const BOOT_ID = readOrEmpty('/proc/sys/kernel/random/boot_id')

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat); '' when gone. */
function startTime(pid: number): string {
  const stat = readOrEmpty(`/proc/${pid}/stat`)
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return fields[19] ?? ''
}

/** This process as a lock owner: `<boot id> <pid> <start time>`. */
export const SELF_OWNER = `${BOOT_ID} ${process.pid} ${startTime(process.pid)}`

/**
 * Whether the owner recorded in a lock file is still alive. Unknown formats
 * count as alive (never break what we do not understand), except an empty
 * file, which a taker leaves only if it dies between create and write: that
 * is stale once it is older than EMPTY_GRACE_MS.
 */
export function ownerAlive(owner: string, mtimeMs: number, now = Date.now()): boolean {
  const parts = owner.trim().split(' ')
  if (owner.trim() === '') return now - mtimeMs < EMPTY_GRACE_MS
  if (parts.length !== 3) return true
  const [boot, pidText, start] = parts
  if (boot !== BOOT_ID) return false
  const pid = Number(pidText)
  if (!Number.isSafeInteger(pid) || pid <= 0) return true
  return startTime(pid) === start
}

const EMPTY_GRACE_MS = 10_000

const queues = new Map<string, Promise<unknown>>()

/** Run `fn` holding the in-process queue for `key` only. */
async function inProcess<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve()
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  const tail = prev.then(() => mine)
  queues.set(key, tail)
  try {
    await prev.catch(() => {})
    return await fn()
  } finally {
    release()
    if (queues.get(key) === tail) queues.delete(key)
  }
}

/**
 * Hold the in-process queues of every key while `fn` runs. All are joined in
 * one synchronous step, so two batches (or a batch and single calls) can never
 * wait on each other in a cycle.
 */
async function inProcessMany<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
  const unique = [...new Set(keys)]
  const prevs: Promise<unknown>[] = []
  const tails: Promise<unknown>[] = []
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  for (const key of unique) {
    const prev = queues.get(key) ?? Promise.resolve()
    const tail = prev.then(() => mine)
    queues.set(key, tail)
    prevs.push(prev.catch(() => {}))
    tails.push(tail)
  }
  try {
    await Promise.all(prevs)
    return await fn()
  } finally {
    release()
    unique.forEach((key, i) => {
      if (queues.get(key) === tails[i]) queues.delete(key)
    })
  }
}

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
    const path = join(this.dir, fileName)
    return inProcess(path, () => acrossProcesses(this.files, path, fn))
  }

  /**
   * Hold the in-process queues of many locks while `fn` runs; `fn` is a batch
   * task that takes their flocks itself (docs/design.md §7), so its blocking
   * waits only ever wait for other processes.
   */
  withInProcess<T>(fileNames: string[], fn: () => Promise<T>): Promise<T> {
    return inProcessMany(fileNames.map((n) => join(this.dir, n)), fn)
  }
}

/** Write an owner marker file (e.g. an import in progress) that recovery judges by its owner's life. */
export async function writeOwnerMarker(files: PoolFiles, path: string): Promise<void> {
  // Atomic and durable: a marker that a power cut left empty would read as a
  // live owner (the EMPTY grace) and keep the crashed import at the next open.
  await files.writeFile(path, SELF_OWNER + '\n', 0o600)
}

/** Whether an owner marker file exists and its owner is dead. */
export async function markerStale(files: PoolFiles, path: string): Promise<boolean> {
  const held = await files.readOwner(path)
  return held !== null && !ownerAlive(held.owner, held.mtimeMs)
}
