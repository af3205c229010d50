// Per-volume locks that serialise mutating calls inside one process AND
// across processes sharing a pool.
//
// In-process: a promise chain per lock file (module-wide, so two pool objects
// on one directory in one process also queue behind each other).
// Across processes: the lock file `<pool>/.reflink-pool/locks/<vid>.lock`,
// created with O_CREAT|O_EXCL and holding the owner's identity (boot id, pid,
// process start time). A lock whose owner is gone (process exited, or the
// machine rebooted) is stale and is broken by the next taker; its existence is
// also how `open` finds volumes whose operation crashed (see recovery.ts).
//
// Why not flock(2): Node has no flock, and a blocking flock on the libuv
// threadpool would pin a thread per waiter. The price of O_EXCL is the stale
// check; breaking a stale lock renames it aside and verifies that what was
// renamed is the stale one, so a live lock is put back instead of stolen.
// (A kernel flock from the native layer would remove the stale case entirely.)
//
// Lock files are not fsynced: after power loss every owner is dead anyway
// (the boot id changed), and a lock file lost with the power does not hide
// leftovers, because the durable session file of the crashed process makes the
// next open scan the whole pool (recovery.ts).
import * as fs from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { hasCode, poolError } from './fail'

const writeFileCb = promisify(fs.writeFile)
const readFileCb = promisify(fs.readFile) as (path: string, enc: 'utf8') => Promise<string>
const unlinkCb = promisify(fs.unlink)
const renameCb = promisify(fs.rename)
const linkCb = promisify(fs.link)
const lstatCb = promisify(fs.lstat)

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
// Waiters poll; a short cap keeps them from missing the gaps between a busy holder's calls.
const MAX_BACKOFF_MS = 20

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Read a lock file's owner and age; null when it vanished. */
export async function readLock(path: string): Promise<{ owner: string; mtimeMs: number } | null> {
  try {
    // lstat first: a lock planted as a symlink is never followed (nor waited on forever).
    const st = await lstatCb(path)
    if (!st.isFile()) throw poolError('ERR_UNSAFE_PATH', `${path} is not a regular file; refusing to use it as a lock`, { path })
    return { owner: await readFileCb(path, 'utf8'), mtimeMs: st.mtimeMs }
  } catch (e) {
    if (hasCode(e, 'ENOENT')) return null
    throw e
  }
}

/**
 * Remove a stale lock if it is still the one we judged stale. Rename it aside
 * first (atomic), then compare: if another taker replaced it meanwhile, link
 * it back (EEXIST means a third taker already holds a fresh lock: theirs wins,
 * and ours, a live one we moved, is restored by nobody; its holder's unlink
 * at release will simply find nothing).
 */
async function breakStale(path: string, staleOwner: string): Promise<void> {
  const aside = `${path}~stale-${randomBytes(6).toString('hex')}`
  try {
    await renameCb(path, aside)
  } catch (e) {
    if (hasCode(e, 'ENOENT')) return
    throw e
  }
  const moved = await readLock(aside)
  if (moved && moved.owner !== staleOwner) {
    try {
      await linkCb(aside, path)
    } catch (e) {
      if (!hasCode(e, 'EEXIST')) throw e
    }
  }
  await unlinkCb(aside).catch(() => {})
}

/** Take the lock file `path` (waiting for live holders), run `fn`, release. */
async function acrossProcesses<T>(path: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFileCb(path, SELF_OWNER + '\n', { flag: 'wx', mode: 0o600 })
      break
    } catch (e) {
      if (!hasCode(e, 'EEXIST')) throw e
    }
    const held = await readLock(path)
    if (held && !ownerAlive(held.owner, held.mtimeMs)) {
      await breakStale(path, held.owner)
      continue
    }
    if (held && held.owner.trim() === SELF_OWNER) {
      // Our own process holds it through another queue key: cannot happen with
      // one key per path; treat as a bug rather than deadlock silently.
      throw new Error(`lock ${path} is already held by this process`)
    }
    await sleep(Math.min(MAX_BACKOFF_MS, 1 + attempt) * (0.5 + Math.random()))
  }
  try {
    return await fn()
  } finally {
    await unlinkCb(path).catch(() => {})
  }
}

export class Locks {
  constructor(readonly dir: string) {}

  /** Hold the lock named `fileName` (in this process and across processes) while `fn` runs. */
  with<T>(fileName: string, fn: () => Promise<T>): Promise<T> {
    const path = join(this.dir, fileName)
    return inProcess(path, () => acrossProcesses(path, fn))
  }
}

/** Write an owner marker file (e.g. an import in progress) that recovery can judge like a lock. */
export async function writeOwnerMarker(path: string): Promise<void> {
  await writeFileCb(path, SELF_OWNER + '\n', { mode: 0o600 })
}

/** Whether an owner marker file exists and its owner is dead. */
export async function markerStale(path: string): Promise<boolean> {
  const held = await readLock(path)
  return held !== null && !ownerAlive(held.owner, held.mtimeMs)
}
