// Power loss on XFS (docs/design.md §4): a seeded workload runs in a child
// process; the XFS shutdown ioctl cuts it at a seeded moment; after remount the
// pool is reopened and checked against the journal kept outside the
// filesystem. Replay one trial with RELIABILITY_SEED=<seed>.
// The full run (>= 200 trials) is `npm run test:crash`.
import test from 'ava'
import { batchCrashSuite, crashSuite } from './helpers/reliability-crash-suite'

crashSuite(test, 'powercut', {
  title: 'power cut at random moments: every clean image is its old or new content, and the pool works after remount',
  label: 'power cut (XFS shutdown)',
  countVar: 'RELIABILITY_POWERCUT_TRIALS',
  baseSeed: 0xc0ffee,
})

batchCrashSuite(test, 'powercut', {
  title: 'batch clone/create/start/stop/remove, power cut at random moments: each volume fully made (listed, holds the template data) or absent, each finished batch whole or removed whole',
  label: 'batch: power cut (XFS shutdown)',
  countVar: 'RELIABILITY_BATCH_POWERCUT_TRIALS',
  baseSeed: 0xba7c4,
})
