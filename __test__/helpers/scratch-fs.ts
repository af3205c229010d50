// Loop-mounted scratch filesystems for the filesystem matrix.
//
// Each suite declares which filesystems it runs on and what copy strategy it
// expects there. A filesystem that cannot be built here (not root, no mkfs) is
// skipped loudly with the reason in the test title; with
// REFLINK_POOL_REQUIRE_FS=1 (CI) that skip becomes a failing test instead.
// Cleanup belongs to the fixture: we unmount and detach only the loop device we
// attached ourselves.
import type { TestFn } from 'ava'
import { mountScratch, unavailableReason, type FsKind, type ScratchFs } from '../../ts/util/loopfs'

// The mounting itself lives in ts/util/loopfs.ts (the benchmark harness and the
// demo build the same filesystems); re-exported so tests keep importing from here.
export { mountScratch, unavailableReason, type FsKind, type ScratchFs }

/** What each filesystem is expected to do for a same-filesystem copy. */
export const FS_MATRIX: ReadonlyArray<{ kind: FsKind; reflink: boolean; copyMethod: 'reflink' | 'copy-range' }> = [
  { kind: 'xfs', reflink: true, copyMethod: 'reflink' },
  { kind: 'btrfs', reflink: true, copyMethod: 'reflink' },
  { kind: 'ext4', reflink: false, copyMethod: 'copy-range' },
]

export const requireFs = process.env.REFLINK_POOL_REQUIRE_FS === '1'

/**
 * Declare a filesystem suite: mounts `kind` before the file's tests and tears
 * it down after. Returns a `test` function (skipped with a reason when the
 * filesystem is unavailable) and a getter for the mounted filesystem.
 */
export function fsSuite<C = unknown>(test: TestFn<C>, kind: FsKind, opts: { sizeMiB?: number } = {}) {
  const reason = unavailableReason(kind)
  let scratch: ScratchFs | undefined
  if (reason) {
    if (requireFs) {
      test(`${kind}: filesystem suite is required (REFLINK_POOL_REQUIRE_FS=1) but cannot run: ${reason}`, (t) => {
        t.fail(reason)
      })
    }
    const skip = test.skip as unknown as (title: string, ...rest: unknown[]) => void
    const skipped = ((title: string, ...rest: unknown[]) =>
      skip(`${title} [skipped: ${kind} unavailable: ${reason}]`, ...rest)) as unknown as TestFn<C>
    return { test: skipped, fs: (): ScratchFs => { throw new Error(reason) } }
  }
  test.before(() => {
    scratch = mountScratch(kind, opts)
  })
  test.after.always(() => {
    scratch?.unmount()
  })
  return {
    test,
    fs: (): ScratchFs => {
      if (!scratch) throw new Error(`${kind} scratch filesystem not mounted`)
      return scratch
    },
  }
}
