// Pool conformance suite on xfs: see helpers/pool-conformance.ts.
import test from 'ava'
import { poolConformance } from './helpers/pool-conformance'

poolConformance(test, 'xfs')
