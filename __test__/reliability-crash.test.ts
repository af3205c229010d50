// Power loss on XFS (SPEC §6, issue 6 §1): a seeded workload runs in a child
// process; the XFS shutdown ioctl cuts it at a seeded moment; after remount the
// pool is reopened and checked against the journal kept outside the
// filesystem. Replay one trial with RELIABILITY_SEED=<seed>.
// The full run (>= 200 trials) is `npm run test:crash`.
import test from 'ava'
import { fsSuite } from './helpers/scratch-fs'
import { trialSeeds } from './helpers/reliability-prng'
import { runCrashTrial, summarize, type TrialResult } from './helpers/reliability-trials'
import { envCount, logFigures } from './helpers/reliability-report'

const xfs = fsSuite(test, 'xfs', { sizeMiB: 512 })

xfs.test.serial('power cut at random moments: every clean image is its old or new content, and the pool works after remount', async (t) => {
  const results: TrialResult[] = []
  for (const seed of trialSeeds(envCount('RELIABILITY_POWERCUT_TRIALS', 10), 0xc0ffee)) {
    const r = await runCrashTrial(xfs.fs(), 'powercut', seed)
    results.push(r)
    if (r.violations.length) t.log(`seed ${seed} (journal ${r.journal}):\n  ${r.violations.join('\n  ')}`)
  }
  const figures = summarize(results)
  logFigures(t, 'power cut (XFS shutdown)', figures)
  t.true(figures.operations > 0, 'the workload ran operations before the cuts')
  t.is(figures.violations, 0, `failing seeds: ${figures.failedSeeds.join(', ')}`)
})
