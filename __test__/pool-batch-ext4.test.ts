// Pool batch calls (docs/design.md §7) on ext4: see helpers/pool-batch.ts.
import test from 'ava'
import { poolBatch } from './helpers/pool-batch'

poolBatch(test, 'ext4')
