// Power loss and process death on ext4 (docs/design.md §4): the same seeded
// workload and invariants as on XFS, on the filesystem without reflink, where a
// commit keeps the old clean image as its revision by hardlink and no precache
// is made (docs/design.md §3). The power cut is the shutdown ioctl, which ext4
// implements like XFS. Replay one trial with RELIABILITY_SEED=<seed>.
import test from 'ava'
import { crashSuite } from './helpers/reliability-crash-suite'

crashSuite(test, 'powercut', {
  title: 'ext4: power cut at random moments: every clean image is its old or new content, and the pool works after remount',
  label: 'power cut (ext4 shutdown)',
  countVar: 'RELIABILITY_EXT4_POWERCUT_TRIALS',
  baseSeed: 0xe4c0,
  kind: 'ext4',
})

crashSuite(test, 'sigkill', {
  title: 'ext4: SIGKILL at random moments: same invariants, and open clears the leftovers',
  label: 'SIGKILL (ext4)',
  countVar: 'RELIABILITY_EXT4_SIGKILL_TRIALS',
  baseSeed: 0xe4d1,
  kind: 'ext4',
})
