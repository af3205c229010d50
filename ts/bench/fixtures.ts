// Benchmark inputs: templates with a chosen number of extents, and sparse
// images with a chosen share of data in scattered runs. Data is random (not
// zeros) so no peer can skip it as a zero block; placement comes from a seeded
// generator so every run of the harness copies the same layout.
import { randomFillSync } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { prng, shuffled } from './random'

/** Size of each data extent of a multi-extent template, and of the hole after it. */
export const EXTENT_BYTES = 16 * 1024
/** A one-extent template is one contiguous run of this many bytes. */
export const SINGLE_EXTENT_BYTES = 16 * 1024 * 1024

/** Writes `runs` (offset, length) of random data (or zeros) into a new file of `size` bytes, then fsyncs it. */
function writeRuns(path: string, size: number, runs: Iterable<[number, number]>, zeros: Iterable<[number, number]> = []): number {
  const fd = openSync(path, 'w', 0o600)
  let written = 0
  try {
    ftruncateSync(fd, size)
    const buf = Buffer.allocUnsafe(1024 * 1024)
    for (const [offset, length] of runs) {
      for (let done = 0; done < length; ) {
        const n = Math.min(buf.length, length - done)
        randomFillSync(buf, 0, n)
        writeSync(fd, buf, 0, n, offset + done)
        done += n
      }
      written += length
    }
    const zero = Buffer.alloc(1024 * 1024)
    for (const [offset, length] of zeros) {
      for (let done = 0; done < length; done += zero.length) writeSync(fd, zero, 0, Math.min(zero.length, length - done), offset + done)
    }
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return written
}

/**
 * A template with `extents` data extents: one contiguous 16 MiB run when 1,
 * else 16 KiB runs each followed by a 16 KiB hole (holes keep them separate
 * extents on every filesystem). Returns the data bytes written.
 */
export function writeExtentTemplate(path: string, extents: number): number {
  if (extents === 1) return writeRuns(path, SINGLE_EXTENT_BYTES, [[0, SINGLE_EXTENT_BYTES]])
  const runs = Array.from({ length: extents }, (_, i): [number, number] => [i * 2 * EXTENT_BYTES, EXTENT_BYTES])
  return writeRuns(path, extents * 2 * EXTENT_BYTES, runs)
}

/**
 * A sparse image of `size` bytes with `fraction` of it data, in `runBytes`
 * runs at positions chosen by `seed` (runs may touch, forming longer ones).
 */
export function writeSparseImage(path: string, size: number, fraction: number, runBytes = 1024 * 1024, seed = 5): number {
  const slots = Math.floor(size / runBytes)
  const want = Math.round(slots * fraction)
  const order = shuffled(Array.from({ length: slots }, (_, i) => i), prng(seed))
  const chosen = order.slice(0, want).sort((a, b) => a - b)
  return writeRuns(path, size, chosen.map((s): [number, number] => [s * runBytes, runBytes]))
}

/** The sparse image of scenario 3 (and 4, 5) of `size` bytes in `dir`, written once per run and shared. */
export function sparseImage(dir: string, size: number, fraction: number): string {
  const path = join(dir, `sparse-${size / 1024 ** 3}GiB-${Math.round(fraction * 100)}pct.img`)
  if (!existsSync(path)) writeSparseImage(path, size, fraction)
  return path
}

/**
 * An image of `size` bytes with `runs` runs of 1 MiB of random data and as many runs of
 * 1 MiB of written zeros (allocated, as a VM leaves a zeroed disk), interleaved through it,
 * made once per run in `dir`. Returns its path and its data bytes (zeros excluded).
 */
export function zeroedImage(dir: string, size: number, runs: number): { path: string; data: number } {
  const MiB = 1024 * 1024
  const path = join(dir, `zeroed-${size / MiB}MiB-${runs}.img`)
  const step = Math.floor(size / runs / MiB) * MiB
  const at = (i: number, shift: number): [number, number] => [i * step + shift, MiB]
  const data = Array.from({ length: runs }, (_, i) => at(i, 0))
  if (!existsSync(path)) writeRuns(path, size, data, Array.from({ length: runs }, (_, i) => at(i, step / 2)))
  return { path, data: runs * MiB }
}
