// Helpers for the pool tests: directory snapshots (to prove "nothing changed"),
// inode identity, content fingerprints, and child processes running pool code.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, openSync, writeSync, closeSync } from 'node:fs'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export interface Entry {
  type: 'file' | 'dir' | 'symlink' | 'other'
  ino: number
  size: number
  mtimeMs: number
  mode: number
  hash?: string
  target?: string
}

/** Every entry below `root` (not following symlinks) with inode, size, mtime, mode and a content hash. */
/**
 * A snapshot without the derived record cache, which any open writes once the record
 * directory has been still for 2 s (docs/design.md §2, the records cache): on a loaded
 * machine a command may be the first open after that, whatever else it does.
 */
export function snapshotState(root: string): Record<string, Entry> {
  const tree = snapshotTree(root)
  delete tree['.reflink-pool/volumes.cache.json']
  return tree
}

export function snapshotTree(root: string): Record<string, Entry> {
  const out: Record<string, Entry> = {}
  const walk = (dir: string) => {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names.sort()) {
      const path = join(dir, name)
      const st = lstatSync(path)
      const rel = relative(root, path)
      const base = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 }
      if (st.isSymbolicLink()) out[rel] = { type: 'symlink', ...base, target: readlinkSync(path) }
      else if (st.isDirectory()) {
        out[rel] = { type: 'dir', ...base, size: 0, mtimeMs: 0 }
        walk(path)
      } else if (st.isFile()) out[rel] = { type: 'file', ...base, hash: hashFile(path) }
      else out[rel] = { type: 'other', ...base }
    }
  }
  walk(root)
  return out
}

export function hashFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)
}

export function ino(path: string): number {
  return statSync(path).ino
}

/** Names in a directory, sorted; [] when missing. */
export function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort()
  } catch {
    return []
  }
}

/** Write `data` at `offset` of an existing file without truncating it (what a VM does to its disk). */
export function writeAt(path: string, offset: number, data: string | Buffer): void {
  const fd = openSync(path, 'r+')
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data, 0, undefined, offset)
  } finally {
    closeSync(fd)
  }
}

export function readAt(path: string, offset: number, length: number): string {
  return readFileSync(path).subarray(offset, offset + length).toString()
}

export const MiB = 1 << 20

/** Run a TypeScript snippet in a child process (tsx); resolves its stdout. */
export async function runChild(script: string, args: string[] = [], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await execFileP(process.execPath, ['--import=tsx', script, ...args], {
    cwd: join(__dirname, '..', '..'),
    timeout: timeoutMs,
    maxBuffer: 16 * MiB,
  })
  return stdout
}

export const CHILD_SCRIPT = join(__dirname, 'pool-child.ts')
