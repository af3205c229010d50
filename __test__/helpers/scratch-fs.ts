// Loop-mounted scratch filesystems for the filesystem matrix.
//
// Each suite declares which filesystems it runs on and what copy strategy it
// expects there. A filesystem that cannot be built here (not root, no mkfs) is
// skipped loudly with the reason in the test title; with
// REFLINK_POOL_REQUIRE_FS=1 (CI) that skip becomes a failing test instead.
// Cleanup belongs to the fixture: we unmount and detach only the loop device we
// attached ourselves.
import type { ExecutionContext, TestFn } from 'ava'
import type { CopyMethod } from '../../ts/copy'
import { mountScratch, unavailableReason, type FsKind, type ScratchFs } from '../../ts/util/loopfs'

// The mounting itself lives in ts/util/loopfs.ts (the benchmark harness and the
// demo build the same filesystems); re-exported so tests keep importing from here.
export { mountScratch, unavailableReason, type FsKind, type ScratchFs }

/** What each filesystem is expected to do for a same-filesystem copy. */
export const FS_MATRIX: ReadonlyArray<{ kind: FsKind; reflink: boolean; copyMethod: Extract<CopyMethod, 'reflink' | 'copy-range'> }> = [
  { kind: 'xfs', reflink: true, copyMethod: 'reflink' },
  { kind: 'btrfs', reflink: true, copyMethod: 'reflink' },
  { kind: 'ext4', reflink: false, copyMethod: 'copy-range' },
]

export const requireFs = process.env.REFLINK_POOL_REQUIRE_FS === '1'

/**
 * The loud skip of every filesystem suite: when `kind` cannot be built here, a
 * stand-in for `test` that skips each test with the reason in its title, and
 * under REFLINK_POOL_REQUIRE_FS=1 one failing test instead; null when it can.
 */
function unavailable<C>(test: TestFn<C>, kind: FsKind): { reason: string; skipped: TestFn<C> } | null {
  const reason = unavailableReason(kind)
  if (!reason) return null
  if (requireFs) {
    test(`${kind}: filesystem suite is required (REFLINK_POOL_REQUIRE_FS=1) but cannot run: ${reason}`, (t) => {
      t.fail(reason)
    })
  }
  const skip = test.skip as unknown as (title: string, ...rest: unknown[]) => void
  const skipped = ((title: string, ...rest: unknown[]) =>
    skip(`${title} [skipped: ${kind} unavailable: ${reason}]`, ...rest)) as unknown as TestFn<C>
  return { reason, skipped }
}

/**
 * Declare a filesystem suite: mounts `kind` before the file's tests and tears
 * it down after. Returns a `test` function (skipped with a reason when the
 * filesystem is unavailable) and a getter for the mounted filesystem.
 */
export function fsSuite<C = unknown>(test: TestFn<C>, kind: FsKind, opts: { sizeMiB?: number } = {}) {
  const missing = unavailable(test, kind)
  let scratch: ScratchFs | undefined
  if (missing) {
    return { test: missing.skipped, fs: (): ScratchFs => { throw new Error(missing.reason) } }
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

/**
 * Declare tests that each get a fresh `kind` filesystem of their own (for tests
 * that unmount it themselves): mounted before the test, unmounted after it with
 * `{ strict: true }`, a no-op when the test unmounted it and a failure when the
 * mount is still busy. The tests run serially, titled `<kind>: <title>`; an
 * unavailable filesystem is skipped as in fsSuite.
 */
export function freshFsTests<C = unknown>(test: TestFn<C>, kind: FsKind, opts: { sizeMiB?: number } = {}) {
  const missing = unavailable(test, kind)
  return (title: string, body: (fs: ScratchFs, t: ExecutionContext<C>) => Promise<void>): void => {
    if (missing) return missing.skipped(`${kind}: ${title}`, () => {})
    test.serial(`${kind}: ${title}`, async (t) => {
      const fs = mountScratch(kind, opts)
      try {
        await body(fs, t)
      } finally {
        fs.unmount({ strict: true })
      }
    })
  }
}
