// Where the demo runs: a temporary pool on the current directory's filesystem
// if it can reflink; else, as root with mkfs.xfs, on a temporary loop-mounted
// XFS image; else in copy mode (setupCheck: false). `cleanup()` removes exactly
// what was made here: the temp directory, or the mount and loop device we attached
// (and any VM image the demo still has attached).
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { detachAttached, mountScratch, unavailableReason } from '../../util/loopfs'
import { loadPoolModule, type Pool } from '../pool-access'

export type PlaceKind = 'reflink-here' | 'xfs-loop' | 'copy'

export interface DemoPlace {
  kind: PlaceKind
  pool: Pool
  /** One sentence for the user: where and why. */
  description: string
  /** What the demo made and `cleanup()` removes (reported so tests can check it is gone). */
  made: { tempDir?: string; image?: string; mountPoint?: string; loopDevice?: string }
  /** Synchronous so it can also run from a signal handler. Idempotent. */
  cleanup(): void
}

/** XFS image size: the template, 100 clones' writes and revisions fit with room to spare (sparse file). */
const XFS_IMAGE_MIB = 3072

function writableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK)
    return true
  } catch {
    return false
  }
}

function isReflinkUnsupported(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ERR_REFLINK_UNSUPPORTED'
}

export async function prepareDemoPlace(opts: { cwd?: string; xfsImage?: boolean } = {}): Promise<DemoPlace> {
  const cwd = opts.cwd ?? process.cwd()
  const { ReflinkPool } = loadPoolModule()
  const base = writableDir(cwd) ? cwd : tmpdir()
  const temp = mkdtempSync(join(base, '.reflink-pool-demo-'))
  const removeTemp = () => rmSync(temp, { recursive: true, force: true })
  try {
    const pool = await ReflinkPool.open({ dirPath: join(temp, 'pool'), name: 'demo' })
    return {
      kind: 'reflink-here',
      pool,
      description: `a temporary pool in ${temp} (this filesystem can reflink)`,
      made: { tempDir: temp },
      cleanup: once(removeTemp),
    }
  } catch (err) {
    if (!isReflinkUnsupported(err)) {
      removeTemp()
      throw err
    }
  }

  const noXfs = opts.xfsImage === false ? '--no-xfs-image was given' : unavailableReason('xfs')
  if (noXfs === null) {
    removeTemp()
    const fs = mountScratch('xfs', { sizeMiB: XFS_IMAGE_MIB })
    try {
      const pool = await ReflinkPool.open({ dirPath: join(fs.dir, 'pool'), name: 'demo' })
      return {
        kind: 'xfs-loop',
        pool,
        description: `${base}'s filesystem cannot reflink, so the demo made a ${XFS_IMAGE_MIB / 1024} GiB sparse XFS image (reflink=1) on ${fs.device}, mounted at ${fs.dir}`,
        made: { tempDir: dirname(fs.image), image: fs.image, mountPoint: fs.dir, loopDevice: fs.device },
        cleanup: once(() => fs.unmount()),
      }
    } catch (err) {
      fs.unmount()
      throw err
    }
  }

  const pool = await ReflinkPool.open({ dirPath: join(temp, 'pool'), name: 'demo', setupCheck: false })
  return {
    kind: 'copy',
    pool,
    description: `COPY MODE: ${base}'s filesystem cannot reflink and no XFS image is made (${noXfs}); every clone is a full sparse copy (setupCheck: false) in ${temp}`,
    made: { tempDir: temp },
    cleanup: once(removeTemp),
  }
}

/** `fn` once; first the VM images the demo attached (still mounted after a failure or Ctrl-C), which keep the pool busy. */
function once(fn: () => void): () => void {
  let done = false
  return () => {
    if (done) return
    done = true
    detachAttached()
    fn()
  }
}
