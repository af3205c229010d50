// Concurrency (docs/design.md §4): several processes doing seeded random
// operations on shared volumes of one pool, and many concurrent operations on
// one volume inside one process. Afterwards every image must be an image some
// import produced (or zeros), no leftovers, revisions in order, every volume
// startable. The full run (4 x 500 operations) is `npm run test:reliability`.
import test from 'ava'
import { join } from 'node:path'
import { fsSuite } from './helpers/scratch-fs'
import { runInProcess, runMultiProcess } from './helpers/reliability-conc-run'
import { envCount, logFigures } from './helpers/reliability-report'

const xfs = fsSuite(test, 'xfs', { sizeMiB: 512 })

xfs.test.serial('4 processes doing random operations on 8 shared volumes lose nothing', async (t) => {
  const f = await runMultiProcess(join(xfs.fs().dir, 'multi'), 4, envCount('RELIABILITY_CONC_OPS', 60), Number(process.env.RELIABILITY_SEED ?? 4242))
  logFigures(t, 'concurrency, 4 processes', { ...f, details: undefined })
  t.is(f.operations, 4 * envCount('RELIABILITY_CONC_OPS', 60))
  t.deepEqual(f.details, [])
})

xfs.test.serial('100 concurrent operations on one volume in one process stay consistent', async (t) => {
  const f = await runInProcess(join(xfs.fs().dir, 'inproc'), 100, Number(process.env.RELIABILITY_SEED ?? 777))
  logFigures(t, 'concurrency, in-process', { ...f, details: undefined })
  t.is(f.operations, 100)
  t.deepEqual(f.details, [])
})
