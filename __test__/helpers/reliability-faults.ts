// Fault injection for the fault suites: filling a filesystem to ENOSPC,
// remounting read-only, and turning a file's data into EIO.
//
// EIO: device-mapper (dm-error, dm-flakey) is not available in this kernel,
// so the fault comes from the loop driver itself: with direct I/O on, a read
// beyond the end of a truncated backing file fails with EIO instead of
// returning zeros. Truncating the backing image at the first physical byte of
// a file's data (ext4 with flex_bg keeps its metadata at the start) makes every
// uncached read of that file fail, which is what a dying disk looks like.
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, writeSync, fsyncSync, unlinkSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import type { ScratchFs } from './scratch-fs'

const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` }
export const sh = (bin: string, args: string[]) => execFileSync(bin, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()

/** Fill `fs` until ENOSPC with a file outside any pool; returns a function that frees the space again. */
export function fillUp(fs: ScratchFs, leaveBytes = 0): () => void {
  const filler = join(fs.dir, 'filler.bin')
  const fd = openSync(filler, 'w')
  const chunk = Buffer.alloc(1 << 20, 0xa5)
  let size = 0
  try {
    for (;;) {
      let n: number
      try {
        n = writeSync(fd, chunk, 0, chunk.length)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break
        throw e
      }
      size += n
      if (n < chunk.length) break
    }
    // Small writes to use the last partial megabyte as well.
    for (;;) {
      try {
        writeSync(fd, chunk, 0, 4096)
        size += 4096
      } catch {
        break
      }
    }
    fsyncSync(fd)
    if (leaveBytes > 0) truncateSync(filler, Math.max(0, size - leaveBytes))
  } finally {
    closeSync(fd)
  }
  return () => unlinkSync(filler)
}

export function remountReadOnly(fs: ScratchFs, ro: boolean): void {
  sh('mount', ['-o', ro ? 'remount,ro' : 'remount,rw', fs.dir])
}

/** Byte offset of the first data extent of `path` on its block device (filefrag). */
export function firstPhysicalByte(path: string): number {
  const out = sh('filefrag', ['-v', path])
  const bs = Number(/blocks of (\d+) bytes/.exec(out)?.[1])
  let min = Infinity
  for (const m of out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*\d+:/gm)) min = Math.min(min, Number(m[1]))
  if (!Number.isFinite(min) || !bs) throw new Error(`no extents found for ${path}:\n${out}`)
  return min * bs
}

/** Make every uncached read of `path`'s data fail with EIO (see the note at the top). */
export function breakFileData(fs: ScratchFs, path: string): void {
  sh('sync', ['-f', path])
  sh('losetup', ['--direct-io=on', fs.device])
  const cut = Math.floor(firstPhysicalByte(path) / 4096) * 4096
  truncateSync(fs.image, cut)
  // Drop the file's cached pages so the next read goes to the (now missing) blocks.
  sh('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'])
}
