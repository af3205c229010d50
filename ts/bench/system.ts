// The machine side of the harness: running peer commands, flushing and
// dropping the page cache between runs, allocated bytes, machine facts.
import { execFile, execFileSync } from 'node:child_process'
import { constants, copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import type { Machine } from './results'

const execFileP = promisify(execFile)

export const isRoot = process.getuid?.() === 0

/** Run a command to completion; rejects with its stderr on a non-zero exit. */
export async function run(bin: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(bin, args, { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } })
    return stdout
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error(`${bin} ${args.join(' ')}: ${(err.stderr || err.message).trim()}`, { cause: e })
  }
}

/** Whether `bin` runs (`bin --version` exits 0). */
export function hasCommand(bin: string): boolean {
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Flush the filesystem holding `dir` (syncfs), so the next timed step does not pay for earlier writes. */
export async function syncFs(dir: string): Promise<void> {
  await run('sync', ['-f', dir])
}

/**
 * Write back everything and drop the page cache (root only), so a copy reads
 * from disk. Returns false where not permitted, and the caller says so.
 */
export async function dropCaches(): Promise<boolean> {
  await run('sync', [])
  if (!isRoot) return false
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

/** Allocated bytes of a file (st_blocks × 512). */
export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512
}

/** The filesystem type of `dir` as statfs names it (`xfs`, `btrfs`, `ext2/ext3`). */
export function fsType(dir: string): string {
  return execFileSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).trim()
}

/** Peak resident set (VmHWM) of a live process, in bytes. */
export function peakRss(statusText: string): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(statusText)
  if (!m) throw new Error('VmHWM missing from /proc/<pid>/status')
  return Number(m[1]) * 1024
}

/** Machine facts; `loadAtStart` is `os.loadavg()` taken when the run began. */
export function machine(loadAtStart: number[]): Machine {
  const c = cpus()
  return {
    kernel: release(),
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    memoryMiB: Math.round(totalmem() / 1024 / 1024),
    node: process.version,
    root: isRoot,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? null,
    loadAverage: { start: loadAtStart.map(round2), end: loadavg().map(round2) },
  }
}

/** Whether `dir`'s filesystem clones (a real FICLONE of a few bytes, via fs.copyFile FICLONE_FORCE). */
export function canReflink(dir: string): boolean {
  const src = join(dir, `.reflink-probe-${process.pid}`)
  const dst = `${src}.clone`
  try {
    writeFileSync(src, 'probe')
    copyFileSync(src, dst, constants.COPYFILE_FICLONE_FORCE)
    return true
  } catch {
    return false
  } finally {
    rmSync(src, { force: true })
    rmSync(dst, { force: true })
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100

/** io_ticks of a block device (ms it had I/O in flight), from /sys/block/<dev>/stat. */
function ioTicks(device: string): number {
  const stat = readFileSync(`/sys/block/${basename(device)}/stat`, 'utf8').trim().split(/\s+/)
  return Number(stat[9])
}

/**
 * Sync `dirs`, then wait until `devices` have had no I/O for two polls in a
 * row (at most `maxMs`): the background work left by deleting many reflinked
 * files (XFS inode inactivation, btrfs cleaner) otherwise lands in whatever is
 * timed next, on any filesystem sharing the host disk. Returns the ms waited.
 */
export async function settle(dirs: readonly string[], devices: readonly string[], maxMs = 15000): Promise<number> {
  const t0 = Date.now()
  for (const d of dirs) await syncFs(d)
  let last = devices.map(ioTicks)
  let quiet = 0
  while (quiet < 2 && Date.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 250))
    const now = devices.map(ioTicks)
    quiet = now.every((v, i) => v === last[i]) ? quiet + 1 : 0
    last = now
  }
  return Date.now() - t0
}
