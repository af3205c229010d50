// Pool batch calls (docs/design.md §7) on xfs: see helpers/pool-batch.ts.
import test from 'ava'
import { poolBatch } from './helpers/pool-batch'

poolBatch(test, 'xfs')
