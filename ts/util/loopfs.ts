// Loop-mounted scratch filesystems (XFS, btrfs, ext4 on sparse images).
//
// Neutral (imports nothing of the project): used by the benchmark harness
// (which builds its own filesystems when root), the CLI demo (an XFS when the
// current directory cannot reflink) and the test fixture
// `__test__/helpers/scratch-fs.ts`, which re-exports these. Cleanup belongs to the caller of `mountScratch`: `unmount()` unmounts
// and detaches only the loop device this module attached. A mount still busy
// after a few tries (a handle left open on it) is detached lazily and reported
// by a throw, so a test suite fails on a leaked handle instead of hiding it.
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
   * device and remove the image. Throws when the mount stayed busy (it is then
   * detached lazily all the same).
   */
  unmount(opts?: { tries?: number }): void
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
    unmount({ tries = UMOUNT_TRIES } = {}) {
      tries = Math.max(1, tries)
      if (!mounted) return
      mounted = false
      let busy: unknown = null
      for (let i = 0; i < tries; i++) {
        try {
          run('umount', [dir])
          busy = null
          break
        } catch (e) {
          busy = e
          if (i + 1 < tries) execFileSync('sleep', ['0.2'])
        }
      }
      // Still busy: something holds a file or directory of it open (a pool not
      // closed, a handle leaked). Detach it lazily so the machine is left clean,
      // then report it: a leaked handle is a bug, not something to hide.
      const holders = busy ? openFdsUnder(dir) : []
      if (busy) {
        try { run('umount', ['-l', dir]) } catch {}
        process.stderr.write(`loopfs: ${dir} still busy after ${tries} tries; detached lazily (umount -l)\n`)
      }
      try { run('losetup', ['-d', device]) } catch {}
      rmSync(root, { recursive: true, force: true })
      if (busy) {
        const held = holders.length ? `; this process holds ${holders.join(', ')}` : ''
        throw new Error(`${kind} scratch filesystem ${dir} was busy (${(busy as Error).message.split('\n')[0]}): a handle on it was left open${held}. It was detached lazily`)
      }
    },
  }
}
