// Space suite on xfs: see helpers/pool-space.ts.
import test from 'ava'
import { poolSpace } from './helpers/pool-space'

poolSpace(test, 'xfs')
