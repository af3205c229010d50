// Process death (SPEC §6, issue 6 §2): the crash workload in a child process
// is SIGKILLed at a seeded moment; the pool is reopened (open must clear the
// leftovers) and checked against the journal. Replay with RELIABILITY_SEED=<seed>.
import test from 'ava'
import { fsSuite } from './helpers/scratch-fs'
import { trialSeeds } from './helpers/reliability-prng'
import { runCrashTrial, summarize, type TrialResult } from './helpers/reliability-trials'
import { envCount, logFigures } from './helpers/reliability-report'

const xfs = fsSuite(test, 'xfs', { sizeMiB: 512 })

xfs.test.serial('SIGKILL at random moments: same invariants, and open clears the leftovers', async (t) => {
  const results: TrialResult[] = []
  for (const seed of trialSeeds(envCount('RELIABILITY_SIGKILL_TRIALS', 10), 0xdead)) {
    const r = await runCrashTrial(xfs.fs(), 'sigkill', seed)
    results.push(r)
    if (r.violations.length) t.log(`seed ${seed} (journal ${r.journal}):\n  ${r.violations.join('\n  ')}`)
  }
  const figures = summarize(results)
  logFigures(t, 'SIGKILL', figures)
  t.true(figures.operations > 0, 'the workload ran operations before the kills')
  t.is(figures.violations, 0, `failing seeds: ${figures.failedSeeds.join(', ')}`)
})
