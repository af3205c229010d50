// Loop-mounted scratch filesystems (XFS, btrfs, ext4 on sparse images).
//
// Neutral (imports nothing of the project): used by the benchmark harness
// (which builds its own filesystems when root), the CLI demo (an XFS when the
// current directory cannot reflink) and the test fixture
// `__test__/helpers/scratch-fs.ts`, which re-exports these. Cleanup belongs to the caller of `mountScratch`: `unmount()` unmounts
// and detaches only the loop device this module attached.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, mkdirSync, closeSync, openSync, ftruncateSync } from 'node:fs'
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
  unmount(): void
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
    unmount() {
      if (!mounted) return
      mounted = false
      for (let i = 0; ; i++) {
        try {
          // A pool object not closed by its test still holds its directory handle
          // until garbage collection: detach lazily after a few tries.
          run('umount', i < 10 ? [dir] : ['-l', dir])
          break
        } catch (e) {
          if (i >= 20) throw e
          execFileSync('sleep', ['0.2'])
        }
      }
      try { run('losetup', ['-d', device]) } catch {}
      rmSync(root, { recursive: true, force: true })
    },
  }
}
