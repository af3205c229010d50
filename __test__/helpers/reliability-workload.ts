// The crash workload: a small pool with one volume of each kind, and a seeded
// sequence of the operations whose durability the crash rules promise (docs/design.md §4) (stop/commit,
// discard, revert, resize of a stopped volume, importData, importStream,
// importVolume, start), each journaled with the clean-image contents it may
// leave, plus creates of new origin volumes (a cut create must leave either a
// volume or nothing: checked from the files and the listing, not the journal). Used by the power-cut and SIGKILL trials (in a child process) and by
// the fault suites.
import { closeSync, openSync, readdirSync, writeSync, fsyncSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { Prng } from './reliability-prng'
import { hashBuffer, hashFile, hashResized } from './reliability-files'
import { Journal } from './reliability-journal'
import { type Pool, type PoolApi, type Volume, type VolumeConfig } from './reliability-api'

const KiB = 1024
export const BLOCK = 4 * KiB

/** The volumes of a crash trial. Sizes are small: the point is the metadata dance, not bandwidth. */
export const CRASH_VOLUMES: ReadonlyArray<VolumeConfig & { vid: string }> = [
  { vid: 'vm-templates/tpl/root', name: 'root', size: 512 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 1 },
  { vid: 'appvms/a/private', name: 'private', size: 256 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 0 },
  { vid: 'appvms/b/private', name: 'private', size: 256 * KiB, saveOnStop: true, rw: true, revisionsToKeep: 3 },
  { vid: 'appvms/c/root', name: 'root', snapOnStart: true, source: 'vm-templates/tpl/root', rw: true },
  { vid: 'appvms/c/volatile', name: 'volatile', kind: 'volatile', size: 128 * KiB, rw: true },
]

export const POOL_REVISIONS = 2

/** The VM directory prefix of the volumes the workload creates on the way (`appvms/new-<n>/private`). */
export const NEW_VOLUME_PREFIX = 'appvms/new-'

/** The clean image path of a vid (docs/design.md §2). */
export const cleanPath = (poolDir: string, vid: string) => join(poolDir, `${vid}.img`)
export const dirtyPath = (poolDir: string, vid: string) => join(poolDir, `${vid}-dirty.img`)

/** The file of revision `rev` of `vid`, found by its name `V.img.<rev>@<time>Z`. */
export function revisionPath(poolDir: string, vid: string, rev: string): string | null {
  const dir = dirname(join(poolDir, vid))
  const prefix = `${basename(vid)}.img.${rev}@`
  const name = readdirSync(dir).find((n) => n.startsWith(prefix) && n.endsWith('Z'))
  return name ? join(dir, name) : null
}

/** Write `count` random blocks at random block offsets of `path` (what a VM does to its disk). */
export function scribble(path: string, g: Prng, count: number, fsync: boolean): void {
  const size = statSync(path).size
  const blocks = Math.max(1, Math.floor(size / BLOCK))
  const fd = openSync(path, 'r+')
  try {
    for (let i = 0; i < count; i++) writeSync(fd, g.bytes(BLOCK), 0, BLOCK, g.int(0, blocks - 1) * BLOCK)
    if (fsync) fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Image data for an import: random blocks with all-zero runs among them (they should become holes). */
export function importPayload(g: Prng, size: number): Buffer {
  const buf = Buffer.alloc(size)
  for (let off = 0; off < size; off += BLOCK) if (g.bool(0.6)) g.bytes(Math.min(BLOCK, size - off)).copy(buf, off)
  return buf
}

/** A Readable that hands `buf` over in uneven chunks, as a pipe would. */
export function chunkedStream(buf: Buffer, g: Prng): Readable {
  const chunks: Buffer[] = []
  for (let off = 0; off < buf.length; ) {
    const n = Math.min(buf.length - off, g.int(1, 5) * 3000)
    chunks.push(buf.subarray(off, off + n))
    off += n
  }
  return Readable.from(chunks)
}

export async function openCrashPool(api: PoolApi, poolDir: string): Promise<Pool> {
  // No setup check: the suites also run on ext4 (the copy fallback); on XFS the pool reflinks either way.
  return api.ReflinkPool.open({ dirPath: poolDir, revisionsToKeep: POOL_REVISIONS, setupCheck: false })
}

/** Create the trial's volumes and give each save-on-stop one a first committed content (journaled). */
export async function setupCrashPool(api: PoolApi, poolDir: string, g: Prng, journal: Journal): Promise<void> {
  const pool = await openCrashPool(api, poolDir)
  try {
    for (const cfg of CRASH_VOLUMES) {
      const vol = await pool.createVolume({ ...cfg })
      if (!cfg.saveOnStop) continue
      // The empty image create() made: the first commit keeps it as a revision.
      journal.clean(cfg.vid, hashFile(cleanPath(poolDir, cfg.vid)))
      await vol.start()
      scribble(vol.path, g, 8, false)
      const h = hashFile(vol.path)
      await vol.stop()
      journal.clean(cfg.vid, h)
    }
  } finally {
    await pool.close()
  }
}

const round = (n: number) => Math.max(BLOCK, Math.round(n / BLOCK) * BLOCK)

/**
 * Run `ops` seeded operations (or until killed). Every operation that can
 * change a clean image is journaled with the contents it may leave.
 * Throws on the first failure (after journaling it): the caller decides
 * whether a failure was expected (after a power cut) or a finding.
 */
export async function runCrashWorkload(pool: Pool, poolDir: string, g: Prng, journal: Journal, ops: number, onOp?: (i: number) => void): Promise<number> {
  const vols = new Map<string, Volume>()
  for (const cfg of CRASH_VOLUMES) vols.set(cfg.vid, pool.getVolume(cfg.vid))
  const running = new Set<string>()
  const saveOnStop = CRASH_VOLUMES.filter((c) => c.saveOnStop).map((c) => c.vid)
  const clean = (vid: string) => hashFile(cleanPath(poolDir, vid))
  for (let i = 0; i < ops; i++) {
    onOp?.(i)
    if (g.bool(0.06)) {
      const vid = `${NEW_VOLUME_PREFIX}${g.int(0, 2 ** 30)}/private`
      const size = g.int(1, 64) * BLOCK
      // Journaled for the in-flight figures only: the vid has no ledger, its check is invariant 6.
      await journal.op(vid, 'create', [], async () => { await pool.createVolume({ vid, name: 'private', size, saveOnStop: true }); return undefined })
      continue
    }
    const cfg = g.pick(CRASH_VOLUMES)
    const vid = cfg.vid
    const vol = vols.get(vid)!
    if (!cfg.saveOnStop) {
      // Snapshot and volatile volumes: start/stop only; their invariants are checked from the source's side.
      if (running.has(vid)) {
        await journal.op(vid, 'stop', [], async () => { await vol.stop(); return undefined })
        running.delete(vid)
      } else {
        await journal.op(vid, 'start', [], async () => { await vol.start(); return undefined })
        running.add(vid)
        scribble(vol.path, g, g.int(1, 4), g.bool(0.3))
      }
      continue
    }
    const old = clean(vid)
    if (running.has(vid)) {
      const choice = g.pick(['stop', 'stop', 'stop', 'discard', 'write', 'resize-running'] as const)
      if (choice === 'write') {
        scribble(vol.path, g, g.int(1, 8), g.bool(0.3))
      } else if (choice === 'stop') {
        const next = hashFile(vol.path)
        await journal.op(vid, 'stop', [old, next], async () => { await vol.stop(); return next })
        running.delete(vid)
      } else if (choice === 'discard') {
        await journal.op(vid, 'discard', [old], async () => { await vol.stop({ discard: true }); return old })
        running.delete(vid)
      } else {
        const size = statSync(vol.path).size + g.int(1, 16) * BLOCK
        await journal.op(vid, 'resize-running', [old], async () => { await vol.resize(size); return old })
      }
      continue
    }
    const choice = g.pick(['start', 'start', 'revert', 'resize', 'importData', 'importStream', 'importVolume'] as const)
    if (choice === 'start') {
      await journal.op(vid, 'start', [old], async () => { await vol.start(); return old })
      running.add(vid)
      scribble(vol.path, g, g.int(1, 8), g.bool(0.3))
    } else if (choice === 'revert') {
      const revs = Object.keys(await vol.revisions())
      if (revs.length === 0) continue
      const rev = g.bool(0.5) ? undefined : g.pick(revs)
      const chosen = rev ?? revs.map(Number).sort((a, b) => a - b).pop()!.toString()
      const file = revisionPath(poolDir, vid, chosen)
      if (!file) throw new Error(`revision ${chosen} of ${vid} is listed but has no file`)
      const next = hashFile(file)
      await journal.op(vid, 'revert', [old, next], async () => { await vol.revert(rev === undefined ? undefined : Number(rev)); return next })
    } else if (choice === 'resize') {
      const cur = statSync(cleanPath(poolDir, vid)).size
      const size = round(cur * (g.bool(0.6) ? 1 + g.float() : 0.5 + g.float() / 2))
      const next = hashResized(cleanPath(poolDir, vid), size)
      await journal.op(vid, 'resize', [old, next], async () => { await vol.resize(size, { allowShrink: size < cur }); return next })
    } else if (choice === 'importData' || choice === 'importStream') {
      const data = importPayload(g, round(g.int(16, 512) * KiB))
      const next = hashBuffer(data)
      await journal.op(vid, choice, [old, next], async () => {
        if (choice === 'importStream') {
          await vol.importStream(chunkedStream(data, g), data.length)
        } else {
          const path = await vol.importData(data.length)
          const fd = openSync(path, 'r+')
          try { writeSync(fd, data, 0, data.length, 0) } finally { closeSync(fd) }
          await vol.importDataEnd(true)
        }
        return next
      })
    } else {
      const srcVid = g.pick(saveOnStop.filter((s) => s !== vid))
      if (running.has(srcVid)) continue
      const next = clean(srcVid)
      await journal.op(vid, 'importVolume', [old, next], async () => { await vol.importVolume(vols.get(srcVid)!); return next })
    }
  }
  return ops
}
