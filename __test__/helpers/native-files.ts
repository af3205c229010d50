// File helpers for the native binding suites: content with real data runs,
// checksums, temp-file listings, ns mtimes and loop devices we attach ourselves.
import { createHash, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** sha256 of the whole content (holes read as zeros); 32 MiB reads keep a 1 GiB file near 1 s. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(32 * MiB)
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

/**
 * Create `path` as a sparse file of `size` bytes whose data is `runs` (offset,
 * length) of random bytes; everything else is a hole. Returns the data bytes.
 */
export async function writeSparse(path: string, size: number, runs: Array<[number, number]>): Promise<number> {
  const fh = await open(path, 'w', 0o600)
  try {
    await fh.truncate(size)
    const block = randomBytes(MiB)
    let data = 0
    for (const [offset, length] of runs) {
      for (let done = 0; done < length; done += block.length) {
        const n = Math.min(block.length, length - done)
        await fh.write(block, 0, n, offset + done)
      }
      data += length
    }
    await fh.sync()
    return data
  } finally {
    await fh.close()
  }
}

/** A file fully made of (non-zero) data. */
export async function writeData(path: string, size: number): Promise<void> {
  await writeSparse(path, size, [[0, size]])
}

/** `count` runs of `runLength` bytes spread over `size` at uneven offsets. */
export function scatteredRuns(size: number, count: number, runLength: number): Array<[number, number]> {
  const stride = Math.floor(size / count)
  return Array.from({ length: count }, (_, i) => {
    const jitter = ((i * 7919) % 13) * 64 * 1024 // deterministic, 64 KiB aligned
    return [Math.min(i * stride + jitter, size - runLength), runLength] as [number, number]
  })
}

/** Temp files `<name>~<random>` left in `dir`. */
export function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes('~'))
}

export function mtimeNs(path: string): bigint {
  return statSync(path, { bigint: true }).mtimeNs
}

export function allocated(path: string): number {
  return statSync(path).blocks * 512
}

function run(bin: string, args: string[]): string {
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` }
  return execFileSync(bin, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** Attach a loop device to `file` (as given: a symlink stays a symlink for losetup). */
export function attachLoop(file: string): string {
  return run('losetup', ['--find', '--show', file])
}

export function detachLoop(device: string): void {
  run('losetup', ['-d', device])
}

/** Size in bytes the kernel currently reports for a block device. */
export function blockDevSize(device: string): number {
  return Number(run('blockdev', ['--getsize64', device]))
}
