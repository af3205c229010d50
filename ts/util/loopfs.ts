// Loop-mounted scratch filesystems (XFS, btrfs, ext4 on sparse images).
//
// Also a VM host's view of a volume (attachImage): an image file with a real
// filesystem in it, attached to a loop device and mounted, for the tests and the
// demo that use volumes as a hypervisor does.
//
// Neutral (imports nothing of the project): used by the benchmark harness
// (which builds its own filesystems when root), the CLI demo (an XFS when the
// current directory cannot reflink) and the test fixture
// `__test__/helpers/scratch-fs.ts`, which re-exports these. Cleanup belongs to the caller of `mountScratch`: `unmount()` unmounts
// and detaches only the loop device this module attached. A mount still busy
// after a few tries (a handle left open on it) is detached lazily and logged
// with the handles held; `strict` (or REFLINK_POOL_STRICT_UNMOUNT=1) makes it a
// throw, so a suite fails on a leaked handle instead of hiding it.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, mkdirSync, closeSync, openSync, ftruncateSync, readdirSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type FsKind = 'xfs' | 'btrfs' | 'ext4'

const MKFS: Record<FsKind, { bin: string; args: string[] }> = {
  xfs: { bin: 'mkfs.xfs', args: ['-q', '-f', '-m', 'reflink=1'] },
  btrfs: { bin: 'mkfs.btrfs', args: ['-q', '-f'] },
  ext4: { bin: 'mkfs.ext4', args: ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'] },
}

function which(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      execFileSync('test', ['-x', join(dir, bin)])
      return true
    } catch {}
  }
  return false
}

/** Why `kind` cannot be mounted here, or null when it can. Synchronous so tests can be declared skipped. */
export function unavailableReason(kind: FsKind): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a loop filesystem'
  if (!which(MKFS[kind].bin)) return `${MKFS[kind].bin} not installed (apt-get install ${kind === 'ext4' ? 'e2fsprogs' : kind + 'progs'})`
  if (!which('losetup')) return 'losetup not installed'
  return null
}

export interface ScratchFs {
  kind: FsKind
  /** The mount point. */
  dir: string
  /** The loop device we attached. */
  device: string
  /** The sparse backing image (outside the filesystem). */
  image: string
  /**
   * Unmount (trying `tries` times, 0.2 s apart; default 5), detach the loop
   * device and remove the image. A mount still busy is detached lazily and
   * logged with the handles this process holds on it; with `strict` (default:
   * REFLINK_POOL_STRICT_UNMOUNT=1) that also throws.
   */
  unmount(opts?: { tries?: number; strict?: boolean }): void
}

/** umount attempts (0.2 s apart) before a mount is reported busy. */
const UMOUNT_TRIES = 5

/** What this process has open on the filesystem mounted at `dir` (from /proc/self/fd). */
function openFdsUnder(dir: string): string[] {
  const out: string[] = []
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`)
        if (target === dir || target.startsWith(dir + '/')) out.push(`fd ${fd} -> ${target}`)
      } catch {}
    }
  } catch {}
  return out
}

function run(bin: string, args: string[]): string {
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` }
  return execFileSync(bin, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** `umount dir`, up to `tries` times 0.2 s apart (udev's probes hold a new device briefly); the last error, or null once unmounted. */
function umountRetrying(dir: string, tries: number): unknown {
  let busy: unknown = null
  for (let i = 0; i < Math.max(1, tries); i++) {
    try {
      run('umount', [dir])
      return null
    } catch (e) {
      busy = e
      if (i + 1 < tries) execFileSync('sleep', ['0.2'])
    }
  }
  return busy
}

/** Build, attach and mount a fresh filesystem of `kind` on a sparse image. */
export function mountScratch(kind: FsKind, opts: { sizeMiB?: number; mountOptions?: string } = {}): ScratchFs {
  const root = mkdtempSync(join(tmpdir(), `reflink-pool-${kind}-`))
  const image = join(root, 'fs.img')
  const dir = join(root, 'mnt')
  mkdirSync(dir)
  const fd = openSync(image, 'w')
  ftruncateSync(fd, (opts.sizeMiB ?? (kind === 'xfs' ? 1536 : 1024)) * 1024 * 1024)
  closeSync(fd)
  let device = ''
  try {
    run(MKFS[kind].bin, [...MKFS[kind].args, image])
    device = run('losetup', ['--find', '--show', image])
    run('mount', [...(opts.mountOptions ? ['-o', opts.mountOptions] : []), device, dir])
  } catch (e) {
    if (device) try { run('losetup', ['-d', device]) } catch {}
    rmSync(root, { recursive: true, force: true })
    throw e
  }
  let mounted = true
  return {
    kind,
    dir,
    device,
    image,
    unmount({ tries = UMOUNT_TRIES, strict = process.env.REFLINK_POOL_STRICT_UNMOUNT === '1' } = {}) {
      if (!mounted) return
      mounted = false
      const busy = umountRetrying(dir, tries)
      // Still busy: something holds a file or directory of it open (a pool not
      // closed, a handle leaked). Detach it lazily so the machine is left clean,
      // then report it: a leaked handle is a bug, not something to hide.
      const holders = busy ? openFdsUnder(dir) : []
      if (busy) {
        try { run('umount', ['-l', dir]) } catch {}
        const held = holders.length ? ` (this process holds ${holders.join(', ')})` : ''
        process.stderr.write(`loopfs: ${dir} still busy after ${tries} tries${held}; detached lazily (umount -l)\n`)
      }
      try { run('losetup', ['-d', device]) } catch {}
      rmSync(root, { recursive: true, force: true })
      if (busy && strict) {
        const held = holders.length ? `; this process holds ${holders.join(', ')}` : ''
        throw new Error(`${kind} scratch filesystem ${dir} was busy (${(busy as Error).message.split('\n')[0]}): a handle on it was left open${held}. It was detached lazily`)
      }
    },
  }
}

// ---- a VM host's view of an image ------------------------------------------------

/** An image file attached to a loop device and mounted, as a VM host attaches a disk (see attachImage). */
export interface AttachedImage {
  image: string
  /** The loop device attached to the image. */
  device: string
  /** Where its filesystem is mounted (a temp directory). */
  dir: string
  /** Unmount, detach the loop device, remove the mount point. Idempotent; synchronous (signal handlers call it). */
  detach(): void
}

/** Images this process attached and has not detached yet (detachAttached releases them all). */
const ATTACHED = new Set<AttachedImage>()

/** Make a filesystem of `kind` in the image file `image` (its whole size; no loop device needed); `args` adds mkfs options. */
export function mkfsImage(kind: FsKind, image: string, args: string[] = []): void {
  run(MKFS[kind].bin, [...MKFS[kind].args, ...args, image])
}

/** Why images cannot be attached and mounted here (attachImage, ext4FileRuns), or null when they can. */
export function clientUnavailableReason(): string | null {
  return unavailableReason('ext4') ?? (which('debugfs') ? null : 'debugfs not installed (apt-get install e2fsprogs)')
}

/**
 * Where the data of the file `path` lives inside the ext4 image `image` (not
 * mounted): byte ranges of the image, in the file's logical order, read with
 * debugfs (no loop device). Writing there changes the file's contents in place,
 * as a VM rewriting the file would, and leaves the filesystem consistent.
 */
export function ext4FileRuns(image: string, path: string): Array<{ offset: number; length: number }> {
  const blockSize = Number(/Block size:\s+(\d+)/.exec(run('debugfs', ['-R', 'stats', image]))?.[1])
  const blocks = run('debugfs', ['-R', `blocks ${path}`, image]).split(/\s+/).filter(Boolean).map(Number)
  if (!(blockSize > 0) || blocks.length === 0 || blocks.some((b) => !Number.isSafeInteger(b))) throw new Error(`debugfs could not map ${path} in ${image}`)
  const runs: Array<{ offset: number; length: number }> = []
  for (const b of blocks) {
    const last = runs[runs.length - 1]
    if (last && last.offset + last.length === b * blockSize) last.length += blockSize
    else runs.push({ offset: b * blockSize, length: blockSize })
  }
  return runs
}

/**
 * Attach the image file `image` (holding a filesystem) to a new loop device and
 * mount it on a temp directory; `readOnly` attaches and mounts it read-only, so
 * nothing is written into the image. On failure whatever was attached is
 * detached again. Call `detach()` when done (also before the image's own
 * filesystem is unmounted: `detachAttached()` does it for all).
 */
export function attachImage(image: string, opts: { readOnly?: boolean } = {}): AttachedImage {
  const dir = mkdtempSync(join(tmpdir(), 'reflink-pool-vm-'))
  let device = ''
  try {
    device = run('losetup', ['--find', '--show', ...(opts.readOnly ? ['--read-only'] : []), image])
    run('mount', [...(opts.readOnly ? ['-o', 'ro'] : []), device, dir])
  } catch (e) {
    if (device) try { run('losetup', ['-d', device]) } catch {}
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  const attached: AttachedImage = {
    image,
    device,
    dir,
    detach() {
      if (!ATTACHED.delete(attached)) return
      const busy = umountRetrying(dir, UMOUNT_TRIES)
      if (busy) try { run('umount', ['-l', dir]) } catch {}
      try { run('losetup', ['-d', device]) } catch {}
      rmSync(dir, { recursive: true, force: true })
      if (busy) throw new Error(`${dir} (${image} on ${device}) was busy: ${(busy as Error).message.split('\n')[0]}; detached lazily`)
    },
  }
  ATTACHED.add(attached)
  return attached
}

/** Attach `image`, run `fn` on its mounted directory, and detach it whatever happens. */
export async function withAttachedImage<T>(image: string, fn: (dir: string) => T | Promise<T>, opts: { readOnly?: boolean } = {}): Promise<T> {
  const attached = attachImage(image, opts)
  try {
    return await fn(attached.dir)
  } finally {
    attached.detach()
  }
}

/** Detach every image this process attached and has not detached (cleanup after a failure or an interrupt). */
export function detachAttached(): void {
  for (const a of [...ATTACHED]) {
    try {
      a.detach()
    } catch {}
  }
}
