// The ava side of the crash suites (power cut, SIGKILL): one serial test that
// runs N seeded trials on a scratch filesystem (XFS by default; ext4, where
// commits keep revisions as hardlinks and make no precache, docs/design.md §3),
// prints the failing seeds with their journals and the figures, and fails on
// any violation. The power cut is the shutdown ioctl, which ext4 implements too.
import type { TestFn } from 'ava'
import { fsSuite, type FsKind } from './scratch-fs'
import { trialSeeds } from './reliability-prng'
import { runCrashTrial, summarize, type CutMode, type TrialResult } from './reliability-trials'
import { envCount, logFigures } from './reliability-report'
import { runBatchTrial, summarizeBatch, type BatchTrialResult } from './reliability-batch'

export function crashSuite(test: TestFn, mode: CutMode, opts: { title: string; label: string; countVar: string; baseSeed: number; kind?: FsKind }): void {
  const scratch = fsSuite(test, opts.kind ?? 'xfs', { sizeMiB: 512 })
  scratch.test.serial(opts.title, async (t) => {
    const results: TrialResult[] = []
    for (const seed of trialSeeds(envCount(opts.countVar, 10), opts.baseSeed)) {
      const r = await runCrashTrial(scratch.fs(), mode, seed)
      results.push(r)
      if (r.violations.length) t.log(`seed ${seed} (journal ${r.journal}):\n  ${r.violations.join('\n  ')}`)
    }
    const figures = summarize(results)
    logFigures(t, opts.label, figures)
    t.true(figures.operations > 0, 'the workload ran operations before the cuts')
    t.is(figures.violations, 0, `failing seeds: ${figures.failedSeeds.join(', ')}`)
  })
}

/**
 * The batch path under the same cuts (docs/design.md §7): each volume of a
 * batch is either fully made (listed, holds the template's data) or absent.
 */
export function batchCrashSuite(test: TestFn, mode: CutMode, opts: { title: string; label: string; countVar: string; baseSeed: number }): void {
  const xfs = fsSuite(test, 'xfs', { sizeMiB: 512 })
  xfs.test.serial(opts.title, async (t) => {
    const results: BatchTrialResult[] = []
    for (const seed of trialSeeds(envCount(opts.countVar, 4), opts.baseSeed)) {
      const r = await runBatchTrial(xfs.fs(), mode, seed)
      results.push(r)
      if (r.violations.length) t.log(`seed ${seed}:\n  ${r.violations.join('\n  ')}`)
    }
    const figures = summarizeBatch(results)
    logFigures(t, opts.label, figures)
    t.true(figures.batchesBeforeCut > 0, 'the workload finished batches before the cuts')
    t.is(figures.violations, 0, `failing seeds: ${figures.failedSeeds.join(', ')}`)
  })
}
