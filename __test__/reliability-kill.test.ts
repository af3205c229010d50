// Process death (docs/design.md §4): the crash workload in a child process
// is SIGKILLed at a seeded moment; the pool is reopened (open must clear the
// leftovers) and checked against the journal. Replay with RELIABILITY_SEED=<seed>.
import test from 'ava'
import { batchCrashSuite, crashSuite } from './helpers/reliability-crash-suite'

crashSuite(test, 'sigkill', {
  title: 'SIGKILL at random moments: same invariants, and open clears the leftovers',
  label: 'SIGKILL',
  countVar: 'RELIABILITY_SIGKILL_TRIALS',
  baseSeed: 0xdead,
})

batchCrashSuite(test, 'sigkill', {
  title: 'batch clone/create/start/stop/remove, SIGKILL at random moments: each volume fully made (listed, holds the template data) or absent, each finished batch whole or removed whole',
  label: 'batch: SIGKILL',
  countVar: 'RELIABILITY_BATCH_SIGKILL_TRIALS',
  baseSeed: 0xba7c5,
})
