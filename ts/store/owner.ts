// Owner records and their liveness: `<boot id> <pid> <start time>`, read from
// /proc.
//
// Why not flock: session files and import markers must outlive the call that
// wrote them (a session lasts as long as the pool object; an import spans many
// calls) and be judged by another process at open, so they record their owner
// instead of holding a lock. The boot id and the process start time make a
// reused pid, or a pid from before a reboot, read as dead. Recovery
// (recovery.ts) cleans what a dead owner left; docs/design.md §4.
import * as fs from 'node:fs'
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

/** This process as an owner: `<boot id> <pid> <start time>`. */
export const SELF_OWNER = `${BOOT_ID} ${process.pid} ${startTime(process.pid)}`

/**
 * Whether the owner recorded in a file is still alive. Unknown formats
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
