// Pool conformance suite (issue 3) on btrfs: see helpers/pool-conformance.ts.
import test from 'ava'
import { poolConformance } from './helpers/pool-conformance'

poolConformance(test, 'btrfs')
