// The filesystem fixture itself: each matrix entry mounts the filesystem it
// claims (checked with `stat -f`), and teardown detaches its loop device.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { FS_MATRIX, mountScratch, unavailableReason, requireFs } from './helpers/scratch-fs'

const STATFS_NAME: Record<string, string> = { xfs: 'xfs', btrfs: 'btrfs', ext4: 'ext2/ext3' }

for (const { kind } of FS_MATRIX) {
  const reason = unavailableReason(kind)
  if (reason && !requireFs) {
    test.skip(`${kind}: fixture mounts the right filesystem [skipped: ${reason}]`, () => {})
    continue
  }
  test.serial(`${kind}: fixture mounts the right filesystem and detaches its loop device`, (t) => {
    const fs = mountScratch(kind)
    try {
      const type = execFileSync('stat', ['-f', '-c', '%T', fs.dir], { encoding: 'utf8' }).trim()
      t.is(type, STATFS_NAME[kind])
      const backing = execFileSync('losetup', ['-n', '-O', 'BACK-FILE', fs.device], { encoding: 'utf8' }).trim()
      t.is(backing, fs.image)
    } finally {
      fs.unmount()
    }
    t.false(existsSync(fs.dir))
    const still = execFileSync('losetup', ['-n', '-O', 'NAME', '-j', fs.image], { encoding: 'utf8' }).trim()
    t.is(still, '')
  })
}
