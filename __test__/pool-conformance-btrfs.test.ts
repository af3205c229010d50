// Pool conformance suite on btrfs: see helpers/pool-conformance.ts.
import test from 'ava'
import { poolConformance } from './helpers/pool-conformance'

poolConformance(test, 'btrfs')
