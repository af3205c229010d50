// File facts the reliability oracles rely on, computed independently of the
// product: content checksums, a manifest of a directory tree (paths, inodes,
// modes, checksums) and the file-name grammar of a pool (docs/design.md §2).
//
// Checksums are sha256 of the apparent content (holes read as zeros), so a
// sparse copy and a reflink of the same data hash the same.
import { createHash } from 'node:crypto'
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, existsSync } from 'node:fs'
import { join, relative } from 'node:path'

const CHUNK = 1 << 20

/** sha256 of a file's content (follows nothing: the path must be a regular file). */
export function hashFile(path: string): string {
  const h = createHash('sha256')
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(CHUNK)
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

/** sha256 of a file's content, or null when it does not exist. */
export function hashIfExists(path: string): string | null {
  return existsSync(path) ? hashFile(path) : null
}

/** sha256 of a buffer. */
export function hashBuffer(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

/** sha256 of what `path` holds after a truncate/zero-extend to `size` bytes. */
export function hashResized(path: string, size: number): string {
  const h = createHash('sha256')
  const fd = openSync(path, 'r')
  let done = 0
  try {
    const buf = Buffer.allocUnsafe(CHUNK)
    while (done < size) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, size - done), null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
      done += n
    }
  } finally {
    closeSync(fd)
  }
  const zeros = Buffer.alloc(CHUNK)
  while (done < size) {
    const n = Math.min(CHUNK, size - done)
    h.update(zeros.subarray(0, n))
    done += n
  }
  return h.digest('hex')
}

export interface ManifestEntry {
  type: 'file' | 'dir' | 'symlink' | 'other'
  ino: number
  mode: number
  size: number
  nlink: number
  /** sha256 for files, link target for symlinks. */
  content: string
}

export type Manifest = Map<string, ManifestEntry>

/** Every path under `root` (not following symlinks) with inode, mode, size and content. */
export function manifest(root: string): Manifest {
  const out: Manifest = new Map()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name)
      const st = lstatSync(p)
      const rel = relative(root, p)
      const base = { ino: st.ino, mode: st.mode, size: st.size, nlink: st.nlink }
      if (st.isSymbolicLink()) out.set(rel, { type: 'symlink', ...base, content: readlinkSync(p) })
      else if (st.isDirectory()) {
        out.set(rel, { type: 'dir', ...base, size: 0, content: '' })
        walk(p)
      } else if (st.isFile()) out.set(rel, { type: 'file', ...base, content: hashFile(p) })
      else out.set(rel, { type: 'other', ...base, content: '' })
    }
  }
  if (existsSync(root)) walk(root)
  return out
}

/** Human-readable differences between two manifests (empty when identical). */
export function diffManifest(before: Manifest, after: Manifest): string[] {
  const diffs: string[] = []
  for (const [p, a] of before) {
    const b = after.get(p)
    if (!b) diffs.push(`removed ${p}`)
    else {
      for (const k of ['type', 'ino', 'mode', 'size', 'nlink', 'content'] as const) {
        if (a[k] !== b[k]) diffs.push(`changed ${p}: ${k} ${a[k]} -> ${b[k]}`)
      }
    }
  }
  for (const p of after.keys()) if (!before.has(p)) diffs.push(`added ${p}`)
  return diffs
}

/** What a file in a pool directory is, by its name (docs/design.md §2). */
export type PoolFileKind = 'clean' | 'dirty' | 'precache' | 'import' | 'revision' | 'temp' | 'other'

const REVISION = /^(.+)\.img\.(\d+)@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z$/

export function classifyPoolFile(name: string): { kind: PoolFileKind; volume?: string; rev?: number } {
  if (name.includes('~')) return { kind: 'temp' }
  const r = REVISION.exec(name)
  if (r) return { kind: 'revision', volume: r[1], rev: Number(r[2]) }
  for (const [suffix, kind] of [['-dirty.img', 'dirty'], ['-precache.img', 'precache'], ['-import.img', 'import'], ['.img', 'clean']] as const) {
    if (name.endsWith(suffix)) return { kind, volume: name.slice(0, -suffix.length) }
  }
  return { kind: 'other' }
}

/** Every file under the pool's image folders, relative to the pool dir, with its kind. */
export function poolImageFiles(poolDir: string): Array<{ rel: string; kind: PoolFileKind; volume?: string; rev?: number }> {
  const out: Array<{ rel: string; kind: PoolFileKind; volume?: string; rev?: number }> = []
  for (const prefix of ['appvms', 'vm-templates']) {
    const top = join(poolDir, prefix)
    if (!existsSync(top)) continue
    for (const vm of readdirSync(top)) {
      const vmDir = join(top, vm)
      if (!lstatSync(vmDir).isDirectory()) continue
      for (const name of readdirSync(vmDir)) {
        const c = classifyPoolFile(name)
        out.push({ rel: `${prefix}/${vm}/${name}`, ...c, volume: c.volume ? `${prefix}/${vm}/${c.volume}` : undefined })
      }
    }
  }
  return out
}

/** Temp files (`*~*`) anywhere under `dir`, relative paths (names only: nothing is read). */
export function tempFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (name.includes('~')) out.push(relative(dir, p))
      if (lstatSync(p).isDirectory()) walk(p)
    }
  }
  if (existsSync(dir)) walk(dir)
  return out
}
