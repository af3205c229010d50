// Space suite on ext4: see helpers/pool-space.ts.
import test from 'ava'
import { poolSpace } from './helpers/pool-space'

poolSpace(test, 'ext4')
