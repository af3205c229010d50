// Pool conformance suite on ext4: see helpers/pool-conformance.ts.
import test from 'ava'
import { poolConformance } from './helpers/pool-conformance'

poolConformance(test, 'ext4')
